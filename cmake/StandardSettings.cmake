# Options every coffer target shares, carried by one INTERFACE target.
option(COFFER_SANITIZE "Build with address and undefined-behaviour sanitizers" OFF)
option(COFFER_WERROR "Treat warnings as errors (developer builds)" OFF)

add_library(coffer_settings INTERFACE)
target_compile_options(coffer_settings INTERFACE
  -Wall -Wextra -Wpedantic -Wshadow -Wconversion -Wno-sign-conversion
  -Wnon-virtual-dtor -Wold-style-cast -Wcast-align -Wformat=2 -Wimplicit-fallthrough)
target_compile_definitions(coffer_settings INTERFACE
  _FILE_OFFSET_BITS=64 $<$<CONFIG:Debug>:_GLIBCXX_ASSERTIONS>)
target_include_directories(coffer_settings INTERFACE ${PROJECT_SOURCE_DIR}/include)
if(COFFER_WERROR)
  target_compile_options(coffer_settings INTERFACE -Werror)
endif()
if(COFFER_SANITIZE)
  target_compile_options(coffer_settings INTERFACE -fsanitize=address,undefined -fno-omit-frame-pointer)
  target_link_options(coffer_settings INTERFACE -fsanitize=address,undefined)
endif()

# coffer_module(NAME SOURCES... DEPENDS ...): a static library for one module.
function(coffer_module name)
  cmake_parse_arguments(M "" "" "SOURCES;DEPENDS;PRIVATE_DEPENDS" ${ARGN})
  add_library(coffer_${name} STATIC ${M_SOURCES})
  target_link_libraries(coffer_${name} PUBLIC coffer_settings ${M_DEPENDS} PRIVATE ${M_PRIVATE_DEPENDS})
  target_include_directories(coffer_${name} PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
endfunction()
