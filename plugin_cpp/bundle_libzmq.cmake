# Copies libzmq.so.5 and the shared libraries it needs into a bundle's Contents/<arch>/lib/, where the plugin looks
# before the system (src/zmq_runtime.h), so the bundle runs on machines without ZeroMQ (render-farm nodes).
# glibc and the C++ runtime stay the system's: the host process has already loaded its own. load-order.txt lists
# the copies leaves first, the order the plugin opens them in (each before anything that needs it).
#
#   cmake -DARCH_DIR=<...>/Vinpaint.ofx.bundle/Contents/Linux-x86-64 [-DLIBZMQ=/usr/lib/x86_64-linux-gnu/libzmq.so.5] \
#         [-DFLOOR=2.28] -P plugin_cpp/bundle_libzmq.cmake
# With FLOOR (VINPAINT_GLIBC_FLOOR), every copy must load on that glibc too, or the script fails.
cmake_minimum_required(VERSION 3.18)
if(NOT ARCH_DIR OR NOT IS_DIRECTORY "${ARCH_DIR}")
  message(FATAL_ERROR "ARCH_DIR must be the bundle's Contents/<arch> folder (got '${ARCH_DIR}')")
endif()
# Only a folder holding the plug-in binary: this script replaces what it wrote to <ARCH_DIR>/lib before, and
# nothing else there may be touched.
file(GLOB plugin_binaries "${ARCH_DIR}/*.ofx")
if(NOT plugin_binaries)
  message(FATAL_ERROR "${ARCH_DIR} holds no .ofx binary: ARCH_DIR must be a bundle's Contents/<arch> folder, e.g. "
                      ".../Vinpaint.ofx.bundle/Contents/Linux-x86-64")
endif()
if(NOT LIBZMQ)  # the one the system's loader would open (script mode knows no library paths of its own)
  find_program(LDCONFIG ldconfig PATHS /sbin /usr/sbin /usr/local/sbin)
  if(NOT LDCONFIG)
    message(FATAL_ERROR "ldconfig was not found to locate libzmq.so.5: pass -DLIBZMQ=<path of libzmq.so.5>")
  endif()
  execute_process(COMMAND ${LDCONFIG} -p OUTPUT_VARIABLE cache ERROR_QUIET)
  execute_process(COMMAND uname -m OUTPUT_VARIABLE machine OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
  # ldconfig names the ABI in brackets, e.g. "libzmq.so.5 (libc6,x86-64) => /lib/x86_64-linux-gnu/libzmq.so.5";
  # on a multilib machine the 32-bit copy is listed too.
  set(abi "")
  if(machine STREQUAL "x86_64")
    set(abi "x86-64")
  elseif(machine STREQUAL "aarch64")
    set(abi "AArch64")
  endif()
  string(REGEX MATCHALL "libzmq\\.so\\.5 \\([^)]*\\) => [^\n]+" entries "${cache}")
  foreach(entry IN LISTS entries)
    if(abi STREQUAL "" OR entry MATCHES "\\([^)]*${abi}[^)]*\\)")
      string(REGEX REPLACE ".* => " "" LIBZMQ "${entry}")
      break()
    endif()
  endforeach()
endif()
if(NOT LIBZMQ OR NOT EXISTS "${LIBZMQ}")
  message(FATAL_ERROR "no libzmq to bundle: install libzmq5 (or libzmq3-dev) or pass -DLIBZMQ=<path of libzmq.so.5>")
endif()
get_filename_component(zmq_real "${LIBZMQ}" REALPATH)

# The dynamic loader's own libraries, glibc's and the C++ runtime: a host has loaded these already.
set(base_pre "^(ld-linux.*|linux-vdso.*|libc|libm|libdl|libpthread|librt|libresolv|libutil|libstdc\\+\\+|libgcc_s)\\.so")
set(base_post "/(ld-linux[^/]*|libc|libm|libdl|libpthread|librt|libresolv|libutil|libstdc\\+\\+|libgcc_s)\\.so[^/]*$")
function(needs file out_var)
  file(GET_RUNTIME_DEPENDENCIES
    LIBRARIES "${file}"
    RESOLVED_DEPENDENCIES_VAR resolved
    UNRESOLVED_DEPENDENCIES_VAR unresolved
    PRE_EXCLUDE_REGEXES "${base_pre}"
    POST_EXCLUDE_REGEXES "${base_post}")
  if(unresolved)
    message(FATAL_ERROR "${file} needs libraries this machine cannot find: ${unresolved}")
  endif()
  set(${out_var} "${resolved}" PARENT_SCOPE)
endfunction()
needs("${zmq_real}" deps)

set(lib_dir "${ARCH_DIR}/lib")
# What an earlier run copied (its load-order.txt lists it) is replaced. Any other file there is refused before
# anything is removed.
set(earlier "")
if(EXISTS "${lib_dir}/load-order.txt")
  file(STRINGS "${lib_dir}/load-order.txt" earlier)
  list(FILTER earlier INCLUDE REGEX "^[A-Za-z0-9._+-]+$")
endif()
file(GLOB present RELATIVE "${lib_dir}" "${lib_dir}/*")
set(others "${present}")
list(REMOVE_ITEM others ${earlier} load-order.txt)
if(others)
  message(FATAL_ERROR "${lib_dir} holds files this script did not put there (${others}); move them away first")
endif()
foreach(name IN LISTS earlier ITEMS load-order.txt)
  file(REMOVE "${lib_dir}/${name}")
endforeach()
file(MAKE_DIRECTORY "${lib_dir}")
# Each file under its soname (the name the loader asks for); configure_file reads through symbolic links. A
# library needs strictly fewer libraries than anything that needs it, so sorting by that count puts leaves first.
configure_file("${zmq_real}" "${lib_dir}/libzmq.so.5" COPYONLY)
set(copied_names libzmq.so.5)
set(ranked "")
foreach(dep IN LISTS deps)
  get_filename_component(name "${dep}" NAME)
  configure_file("${dep}" "${lib_dir}/${name}" COPYONLY)
  list(APPEND copied_names ${name})
  needs("${dep}" its)
  list(LENGTH its count)
  string(LENGTH "${count}" digits)
  string(REPEAT "0" "4" pad)
  math(EXPR keep "4 - ${digits}")
  string(SUBSTRING "${pad}" 0 ${keep} pad)
  list(APPEND ranked "${pad}${count}:${name}")
endforeach()
list(SORT ranked)
set(order "")
foreach(entry IN LISTS ranked)
  string(REGEX REPLACE "^[0-9]+:" "" name "${entry}")
  string(APPEND order "${name}\n")
endforeach()
string(APPEND order "libzmq.so.5\n")
file(WRITE "${lib_dir}/load-order.txt" "${order}")

if(FLOOR)
  file(GLOB copies "${lib_dir}/*.so*")
  foreach(copy IN LISTS copies)
    execute_process(COMMAND ${CMAKE_COMMAND} -DBUNDLE=${copy} -DFLOOR=${FLOOR}
                            -P ${CMAKE_CURRENT_LIST_DIR}/tests/check_glibc.cmake
                    RESULT_VARIABLE rc OUTPUT_VARIABLE said ERROR_VARIABLE said)
    if(NOT rc EQUAL 0)
      foreach(name IN LISTS copied_names)
        file(REMOVE "${lib_dir}/${name}")
      endforeach()
      file(REMOVE "${lib_dir}/load-order.txt")
      message(FATAL_ERROR "the bundled ${copy} does not load on glibc ${FLOOR}:\n${said}")
    endif()
  endforeach()
endif()
string(STRIP "${order}" order_text)
string(REPLACE "\n" ", " order_text "${order_text}")
message(STATUS "bundled into ${lib_dir}, in load order: ${order_text}")
