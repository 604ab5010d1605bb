# Copies libzmq.so.5 and the shared libraries it needs into a bundle's Contents/<arch>/lib/, where the plugin looks
# before the system (src/zmq_runtime.h), so the bundle runs on machines without ZeroMQ (render-farm nodes).
# glibc and the C++ runtime stay the system's: the host process has already loaded its own.
#
#   cmake -DARCH_DIR=<...>/Vinpaint.ofx.bundle/Contents/Linux-x86-64 [-DLIBZMQ=/usr/lib/x86_64-linux-gnu/libzmq.so.5] \
#         -P plugin_cpp/bundle_libzmq.cmake
cmake_minimum_required(VERSION 3.18)
if(NOT ARCH_DIR OR NOT IS_DIRECTORY "${ARCH_DIR}")
  message(FATAL_ERROR "ARCH_DIR must be the bundle's Contents/<arch> folder (got '${ARCH_DIR}')")
endif()
if(NOT LIBZMQ)  # the one the system's loader would open (script mode knows no library paths of its own)
  execute_process(COMMAND ldconfig -p OUTPUT_VARIABLE cache ERROR_QUIET)
  string(REGEX MATCH "libzmq\\.so\\.5 \\([^)]*\\) => ([^\n]+)" found "${cache}")
  set(LIBZMQ "${CMAKE_MATCH_1}")
endif()
if(NOT LIBZMQ OR NOT EXISTS "${LIBZMQ}")
  message(FATAL_ERROR "no libzmq to bundle: install libzmq5 (or libzmq3-dev) or pass -DLIBZMQ=<path of libzmq.so.5>")
endif()
get_filename_component(zmq_real "${LIBZMQ}" REALPATH)

# The dynamic loader's own libraries, glibc's and the C++ runtime: a host has loaded these already.
set(base "^(ld-linux.*|linux-vdso.*|libc|libm|libdl|libpthread|librt|libresolv|libutil|libstdc\\+\\+|libgcc_s)\\.so")
file(GET_RUNTIME_DEPENDENCIES
  LIBRARIES "${zmq_real}"
  RESOLVED_DEPENDENCIES_VAR resolved
  UNRESOLVED_DEPENDENCIES_VAR unresolved
  PRE_EXCLUDE_REGEXES "${base}"
  POST_EXCLUDE_REGEXES "/(ld-linux[^/]*|libc|libm|libdl|libpthread|librt|libresolv|libutil|libstdc\\+\\+|libgcc_s)\\.so[^/]*$")
if(unresolved)
  message(FATAL_ERROR "${zmq_real} needs libraries this machine cannot find: ${unresolved}")
endif()

set(lib_dir "${ARCH_DIR}/lib")
file(REMOVE_RECURSE "${lib_dir}")
file(MAKE_DIRECTORY "${lib_dir}")
# Each file under its soname (the name the loader asks for); configure_file reads through symbolic links.
configure_file("${zmq_real}" "${lib_dir}/libzmq.so.5" COPYONLY)
set(copied libzmq.so.5)
foreach(dep IN LISTS resolved)
  get_filename_component(name "${dep}" NAME)
  configure_file("${dep}" "${lib_dir}/${name}" COPYONLY)
  list(APPEND copied ${name})
endforeach()
list(JOIN copied ", " copied_text)
message(STATUS "bundled into ${lib_dir}: ${copied_text}")
