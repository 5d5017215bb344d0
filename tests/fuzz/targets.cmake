# libFuzzer targets, included by CMakeLists.txt when SYNOSH_FUZZ is ON (an
# include, not a subdirectory, so the generated embedded_lua.c is visible).
# Configure with clang:
#   cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DSYNOSH_FUZZ=ON
if(NOT CMAKE_C_COMPILER_ID MATCHES "Clang")
  message(FATAL_ERROR "SYNOSH_FUZZ needs clang for libFuzzer; configure with "
    "-DCMAKE_C_COMPILER=clang (Debian packages clang and libclang-rt-14-dev)")
endif()

set(FUZZ_FLAGS -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined
  -fno-omit-frame-pointer -g)

# The synosh core that the Lua targets load, compiled with coverage
# instrumentation and the sanitizers.
add_library(fuzz_core OBJECT
  ${CMAKE_SOURCE_DIR}/src/lcore.c
  ${CMAKE_SOURCE_DIR}/src/http.c
  ${CMAKE_SOURCE_DIR}/src/msg.c
  ${CMAKE_SOURCE_DIR}/src/embedded.c
  ${EMBEDDED_C})
target_include_directories(fuzz_core PRIVATE ${CMAKE_SOURCE_DIR}/src ${CJSON_INCLUDE_DIR})
target_compile_definitions(fuzz_core PRIVATE _POSIX_C_SOURCE=200809L
  SYNOSH_VERSION="${PROJECT_VERSION}")
target_compile_options(fuzz_core PRIVATE ${FUZZ_FLAGS})
target_link_libraries(fuzz_core PRIVATE PkgConfig::LUA PkgConfig::CURL)

# The Lua allocator, with the sanitizers but without coverage: which of its
# branches a block takes depends on what earlier inputs left in the free
# lists, so as coverage it would only make noise.
add_library(fuzz_alloc OBJECT ${CMAKE_SOURCE_DIR}/src/alloc.c)
target_include_directories(fuzz_alloc PRIVATE ${CMAKE_SOURCE_DIR}/src)
target_compile_options(fuzz_alloc PRIVATE -fsanitize=address,undefined
  -fno-sanitize-recover=undefined -fno-omit-frame-pointer -g)
target_link_libraries(fuzz_alloc PRIVATE PkgConfig::LUA)

function(add_fuzz_target name)
  add_executable(fuzz_${name} ${ARGN})
  target_include_directories(fuzz_${name} PRIVATE ${CMAKE_SOURCE_DIR}/src ${CJSON_INCLUDE_DIR})
  target_compile_definitions(fuzz_${name} PRIVATE _POSIX_C_SOURCE=200809L)
  target_compile_options(fuzz_${name} PRIVATE ${FUZZ_FLAGS} -Wall -Wextra)
  target_link_options(fuzz_${name} PRIVATE -fsanitize=fuzzer,address,undefined)
endfunction()

# Targets whose driver is Lua: the input goes to tests/fuzz/<name>.lua. Each
# gets a Lua heap limit in bytes and an instruction budget per input, sized
# well above what a valid input of max_len (tests/fuzz/run) needs: a response
# body of 64 KiB (the cap in response.lua) can list 20,000 empty images,
# which take a few hundred thousand instructions to check.
set(reference_limits FUZZ_MEMORY_LIMIT=67108864 FUZZ_INSTRUCTION_BUDGET=1000000)
set(response_limits FUZZ_MEMORY_LIMIT=268435456 FUZZ_INSTRUCTION_BUDGET=5000000)
set(config_limits FUZZ_MEMORY_LIMIT=33554432 FUZZ_INSTRUCTION_BUDGET=200000)
foreach(name reference response config)
  add_fuzz_target(${name} ${CMAKE_CURRENT_LIST_DIR}/lua_target.c $<TARGET_OBJECTS:fuzz_core>
    $<TARGET_OBJECTS:fuzz_alloc>)
  target_compile_definitions(fuzz_${name} PRIVATE
    FUZZ_DRIVER="${CMAKE_CURRENT_LIST_DIR}/${name}.lua" ${${name}_limits})
  target_link_libraries(fuzz_${name} PRIVATE ${CJSON_LIBRARY} PkgConfig::LUA PkgConfig::CURL m)
endforeach()

add_fuzz_target(cli ${CMAKE_CURRENT_LIST_DIR}/cli_target.c ${CMAKE_SOURCE_DIR}/src/cli.c)
