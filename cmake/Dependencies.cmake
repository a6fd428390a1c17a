# System libraries, all Debian 12 packages (see .ci/install-deps). Nothing is vendored or downloaded.
find_package(PkgConfig REQUIRED)
pkg_check_modules(SODIUM REQUIRED IMPORTED_TARGET libsodium)
pkg_check_modules(CRYPTSETUP REQUIRED IMPORTED_TARGET libcryptsetup)
pkg_check_modules(LIBSSH REQUIRED IMPORTED_TARGET libssh)
pkg_check_modules(XXHASH REQUIRED IMPORTED_TARGET libxxhash)
pkg_check_modules(LIBACL REQUIRED IMPORTED_TARGET libacl)
pkg_check_modules(LIBCRYPTO REQUIRED IMPORTED_TARGET libcrypto)  # BLAKE2b for bulk hashing
pkg_check_modules(CURL REQUIRED IMPORTED_TARGET libcurl)  # report pings (http and https)
find_package(fmt REQUIRED)
find_package(tomlplusplus REQUIRED)
find_package(nlohmann_json REQUIRED)
find_package(CLI11 REQUIRED)
find_package(Threads REQUIRED)

# librsync ships no pkg-config or CMake file in Debian: find it by header and library.
find_path(LIBRSYNC_INCLUDE_DIR librsync.h REQUIRED)
find_library(LIBRSYNC_LIBRARY NAMES rsync REQUIRED)
add_library(coffer_librsync INTERFACE)
target_include_directories(coffer_librsync INTERFACE ${LIBRSYNC_INCLUDE_DIR})
target_link_libraries(coffer_librsync INTERFACE ${LIBRSYNC_LIBRARY})
