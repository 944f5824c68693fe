# Shared build helpers: one small call per library and per test (as Abseil does).

macro(hubcensus_find_dependencies)
  find_package(Threads REQUIRED)
  find_package(Protobuf REQUIRED)              # module mode: FindProtobuf, protobuf_generate
  find_package(gRPC CONFIG REQUIRED)
  find_package(RocksDB CONFIG REQUIRED)
  find_package(absl CONFIG REQUIRED)
  if(HUBCENSUS_STATIC_DEPS)
    # Defined first, FindCURL keeps it: everything that links CURL::libcurl gets libcurl on demand
    # (cmake/libcurl_on_demand.c; the library is added below, with the compile options).
    add_library(CURL::libcurl INTERFACE IMPORTED)
    set_target_properties(CURL::libcurl PROPERTIES INTERFACE_LINK_LIBRARIES hubcensus_libcurl_on_demand)
  endif()
  find_package(CURL REQUIRED)
  find_package(simdjson CONFIG REQUIRED)
  find_package(prometheus-cpp CONFIG REQUIRED)
  find_package(ZLIB REQUIRED)
  find_package(PkgConfig REQUIRED)
  pkg_check_modules(RE2 REQUIRED IMPORTED_TARGET re2)
  if(HUBCENSUS_BUILD_TESTS)
    find_package(GTest CONFIG REQUIRED)
    include(GoogleTest)
  endif()

  add_compile_options(-Wall -Wextra -Wno-unused-parameter)
  if(CMAKE_CXX_COMPILER_ID MATCHES "Clang")
    add_compile_options(-Wthread-safety)
  endif()
  if(HUBCENSUS_SANITIZE)
    add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
    add_link_options(-fsanitize=address,undefined)
  endif()
  if(HUBCENSUS_TSAN)
    add_compile_options(-fsanitize=thread -fno-omit-frame-pointer)
    add_link_options(-fsanitize=thread)
  endif()
  if(HUBCENSUS_STATIC_DEPS)
    hubcensus_link_dependencies_statically()
    add_library(hubcensus_libcurl_on_demand STATIC ${PROJECT_SOURCE_DIR}/cmake/libcurl_on_demand.c)
    target_link_libraries(hubcensus_libcurl_on_demand PRIVATE ${CMAKE_DL_LIBS})
    target_include_directories(hubcensus_libcurl_on_demand PRIVATE ${CURL_INCLUDE_DIRS})
  endif()
endmacro()

# The C++ libraries whose Debian packages also ship an archive (.a): with HUBCENSUS_STATIC_DEPS
# every executable links these statically. A `hubcensus query --data_dir` is a fresh process, and
# the dynamic linker spent most of its start looking up and relocating the symbols of 60 shared
# Abseil, gRPC and protobuf libraries (`hubcensus --version`: 93 libraries, ~60 ms of CPU here).
# OpenSSL, prometheus-cpp and simdjson stay shared (Debian ships no archive of the last two).
# libcurl.a would need archives of libraries Debian does not ship (libldap, librtmp, ...): instead
# libcurl.so is loaded when first called (cmake/libcurl_on_demand.c).
set(HUBCENSUS_STATIC_LIBRARY_NAMES
    "^lib(absl_.+|grpc|grpc\\+\\+|grpc\\+\\+_reflection|gpr|upb|address_sorting|re2|cares|protobuf|gflags|snappy|lz4|bz2)$")

# The archive beside a shared library named in HUBCENSUS_STATIC_LIBRARY_NAMES (a path to
# libX.so[.N] or -lX), else the item unchanged.
function(_hubcensus_static_twin item out)
  set(result "${item}")
  if(item MATCHES "^(/.*)/(lib[^/]+)\\.so(\\.[0-9.]+)?$")
    set(archive "${CMAKE_MATCH_1}/${CMAKE_MATCH_2}.a")
    if(CMAKE_MATCH_2 MATCHES "${HUBCENSUS_STATIC_LIBRARY_NAMES}" AND EXISTS "${archive}")
      set(result "${archive}")
    endif()
  elseif(item MATCHES "^-l(.+)$")
    set(name "lib${CMAKE_MATCH_1}")
    if(name MATCHES "${HUBCENSUS_STATIC_LIBRARY_NAMES}")
      # NO_CACHE keeps a variable of the caller's scope: make sure none is named so.
      unset(_hubcensus_archive)
      find_library(_hubcensus_archive NAMES "${name}.a" NO_CACHE)
      if(_hubcensus_archive)
        set(result "${_hubcensus_archive}")
      endif()
    endif()
  endif()
  set(${out} "${result}" PARENT_SCOPE)
endfunction()

# Points every imported target found so far (in this directory: the whole tree sees them) at the
# archives of HUBCENSUS_STATIC_LIBRARY_NAMES: their locations, and the paths and -l flags that
# pkg-config style targets (re2::re2, PkgConfig::RE2) list as link libraries. Each target's
# INTERFACE_LINK_LIBRARIES already names what its library needs, so the archives link in order.
function(hubcensus_link_dependencies_statically)
  get_directory_property(imported IMPORTED_TARGETS)
  set(swapped 0)
  foreach(target IN LISTS imported)
    get_target_property(type ${target} TYPE)
    if(type STREQUAL "SHARED_LIBRARY" OR type STREQUAL "UNKNOWN_LIBRARY")
      get_target_property(configs ${target} IMPORTED_CONFIGURATIONS)
      set(properties IMPORTED_LOCATION)
      if(configs)
        foreach(config IN LISTS configs)
          string(TOUPPER "${config}" config)
          list(APPEND properties IMPORTED_LOCATION_${config})
        endforeach()
      endif()
      foreach(property IN LISTS properties)
        get_target_property(location ${target} ${property})
        if(location)
          _hubcensus_static_twin("${location}" archive)
          if(NOT archive STREQUAL location)
            set_target_properties(${target} PROPERTIES ${property} "${archive}")
            math(EXPR swapped "${swapped} + 1")
          endif()
        endif()
      endforeach()
    endif()
    get_target_property(links ${target} INTERFACE_LINK_LIBRARIES)
    if(links)
      set(new_links "")
      foreach(item IN LISTS links)
        _hubcensus_static_twin("${item}" archive)
        list(APPEND new_links "${archive}")
      endforeach()
      if(NOT new_links STREQUAL links)
        set_target_properties(${target} PROPERTIES INTERFACE_LINK_LIBRARIES "${new_links}")
        math(EXPR swapped "${swapped} + 1")
      endif()
    endif()
  endforeach()
  message(STATUS "HUBCENSUS_STATIC_DEPS: ${swapped} imported library locations point at archives")
endfunction()

# hubcensus_library(NAME [HDRS a.h] SRCS a.cc internal/b.h internal/b.cc DEPS x y)
# As Abseil's absl_cc_library: HDRS are the library's public headers, what other libraries may
# include; everything else (SRCS) is private. In the tree, a library's private headers live in
# <lib>/internal/, and only <lib>/ and tests/<lib>/ may include them: the
# internal_headers_stay_private test (cmake/check_internal_includes.cmake) holds everyone to it.
function(hubcensus_library NAME)
  cmake_parse_arguments(ARG "" "" "HDRS;SRCS;DEPS" ${ARGN})
  add_library(${NAME} STATIC ${ARG_HDRS} ${ARG_SRCS})
  target_include_directories(${NAME} PUBLIC ${PROJECT_SOURCE_DIR})
  target_link_libraries(${NAME} PUBLIC ${ARG_DEPS})
endfunction()

# hubcensus_test(NAME SRCS a_test.cc DEPS x y [LABELS l] [TIMEOUT s])
# Tests get the source and shared/ folders as compile definitions, so fixtures no one here wrote
# (../shared/data) are found from any build folder.
function(hubcensus_test NAME)
  cmake_parse_arguments(ARG "" "TIMEOUT" "SRCS;DEPS;LABELS" ${ARGN})
  if(NOT ARG_TIMEOUT)
    set(ARG_TIMEOUT 300)
  endif()
  add_executable(${NAME} ${ARG_SRCS})
  target_link_libraries(${NAME} PRIVATE ${ARG_DEPS} GTest::gmock GTest::gtest GTest::gtest_main)
  if(HUBCENSUS_TSAN)
    target_link_libraries(${NAME} PRIVATE hubcensus_tsan_absl_mutex)
  endif()
  target_compile_definitions(${NAME} PRIVATE
    HUBCENSUS_SOURCE_DIR="${PROJECT_SOURCE_DIR}"
    HUBCENSUS_SHARED_DIR="${PROJECT_SOURCE_DIR}/../shared"
    HUBCENSUS_BINARY_DIR="${PROJECT_BINARY_DIR}")
  set(properties TIMEOUT ${ARG_TIMEOUT})
  if(ARG_LABELS)
    list(APPEND properties LABELS "${ARG_LABELS}")
  endif()
  if(HUBCENSUS_SANITIZE)
    # Leaks inside system libraries (cmake/lsan.supp) are not ours to fix.
    list(APPEND properties ENVIRONMENT "LSAN_OPTIONS=suppressions=${PROJECT_SOURCE_DIR}/cmake/lsan.supp")
  endif()
  if(HUBCENSUS_TSAN)
    # Races inside uninstrumented system libraries (cmake/tsan.supp) are not ours to fix.
    list(APPEND properties ENVIRONMENT
         "TSAN_OPTIONS=halt_on_error=1 second_deadlock_stack=1 suppressions=${PROJECT_SOURCE_DIR}/cmake/tsan.supp")
  endif()
  # NO_PRETTY_VALUES: a parameterised test is named by its instantiation's name generator alone
  # (Table/RetryTest.Retries/s408), not by gtest's byte dump of a parameter it cannot print.
  gtest_discover_tests(${NAME}
    NO_PRETTY_VALUES
    DISCOVERY_MODE PRE_TEST
    DISCOVERY_TIMEOUT 60
    PROPERTIES ${properties})
endfunction()
