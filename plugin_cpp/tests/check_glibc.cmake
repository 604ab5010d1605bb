# The newest glibc symbol version the bundle needs: a host machine with an older glibc cannot load it (the host
# then skips the plugin, usually without a word). Prints it; with FLOOR set, fails when it is newer than FLOOR.
# Usage: cmake -DBUNDLE=path/to/Vinpaint.ofx [-DFLOOR=2.28] -P check_glibc.cmake
find_program(READELF readelf REQUIRED)
execute_process(COMMAND ${READELF} -V ${BUNDLE} OUTPUT_VARIABLE info RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "readelf failed on ${BUNDLE}")
endif()
string(REGEX MATCHALL "Name: GLIBC_[0-9.]+" names "${info}")
set(newest "")
foreach(name IN LISTS names)
  string(REGEX REPLACE "Name: GLIBC_" "" version "${name}")
  if(newest STREQUAL "" OR version VERSION_GREATER newest)
    set(newest ${version})
  endif()
endforeach()
if(newest STREQUAL "")
  message(STATUS "the bundle needs no versioned glibc symbols")
  return()
endif()
if(FLOOR AND newest VERSION_GREATER FLOOR)
  message(FATAL_ERROR "the bundle needs glibc ${newest} or newer, above VINPAINT_GLIBC_FLOOR=${FLOOR}: hosts on "
                      "machines with an older glibc cannot load it. Build it on the oldest system you deploy to "
                      "(docs/plugin.md, \"Which machines the bundle loads on\").")
endif()
message(STATUS "the bundle needs glibc ${newest} or newer")
