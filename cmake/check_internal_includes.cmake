# cmake -DSOURCE_DIR=<repo> -P check_internal_includes.cmake
# A library's private headers live in <lib>/internal/; only <lib>/ itself and its tests
# (tests/<lib>/) may include them. Fails naming every file that reaches into another library's
# internals.
file(GLOB_RECURSE sources RELATIVE ${SOURCE_DIR}
     ${SOURCE_DIR}/*.h ${SOURCE_DIR}/*.cc)
set(violations "")
foreach(file ${sources})
  if(file MATCHES "^build/" OR file MATCHES "^\\.")
    continue()
  endif()
  file(STRINGS ${SOURCE_DIR}/${file} includes REGEX "^#include \"[a-z_]+/internal/")
  foreach(line ${includes})
    string(REGEX REPLACE "^#include \"([a-z_]+)/internal/.*" "\\1" lib "${line}")
    if(NOT file MATCHES "^${lib}/" AND NOT file MATCHES "^tests/${lib}/")
      string(APPEND violations "\n  ${file}: ${line}")
    endif()
  endforeach()
endforeach()
if(violations)
  message(FATAL_ERROR "private headers included outside their library:${violations}")
endif()
message(STATUS "internal headers: included only by their own library and its tests")
