# Installation: headers, both libraries, the CLI, nmformer.pc and the nmformer CMake package.
# Included from CMakeLists.txt once the targets exist. Layout from GNUInstallDirs.
include(CMakePackageConfigHelpers)

set(NMF_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/nmformer)

install(TARGETS nmformer RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
# Two export sets, so that the package config can load the static one only when it is asked for.
install(TARGETS nmformer_shared EXPORT nmformer-shared-targets
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(TARGETS nmformer_static EXPORT nmformer-static-targets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/nmformer DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
        FILES_MATCHING PATTERN "*.h")
install(FILES ${PROJECT_BINARY_DIR}/include/nmformer/version.h
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/nmformer)

# CMake package: find_package(nmformer CONFIG) gives nmformer::nmformer (the shared library, or the
# static one when nmformer_USE_STATIC_LIBS is ON), plus nmformer::nmformer_shared/_static by name.
install(EXPORT nmformer-shared-targets NAMESPACE nmformer:: DESTINATION ${NMF_CMAKE_DIR})
install(EXPORT nmformer-static-targets NAMESPACE nmformer:: DESTINATION ${NMF_CMAKE_DIR})
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/nmformerConfig.cmake.in
  ${PROJECT_BINARY_DIR}/nmformerConfig.cmake INSTALL_DESTINATION ${NMF_CMAKE_DIR})
# 0.x: every 0.y.z claims compatibility, as the SONAME libnmformer.so.0 does.
write_basic_package_version_file(${PROJECT_BINARY_DIR}/nmformerConfigVersion.cmake
  COMPATIBILITY SameMajorVersion)
install(FILES ${PROJECT_BINARY_DIR}/nmformerConfig.cmake ${PROJECT_BINARY_DIR}/nmformerConfigVersion.cmake
        DESTINATION ${NMF_CMAKE_DIR})

# nmformer.pc. Libs.private lists what this build actually linked (NMF_LINK_DEPS), each library
# as -l<name> (plus -L<dir> outside the compiler's own search path); zlib, which always has a .pc
# file, goes to Requires.private instead.
set(NMF_PC_REQUIRES_PRIVATE "zlib")
set(NMF_PC_LIBS_PRIVATE "")
foreach(dep ${NMF_LINK_DEPS})
  if(dep IN_LIST ZLIB_LIBRARIES)
    continue()
  endif()
  nmf_link_name(name dir "${dep}")
  if(NOT dir STREQUAL "")
    string(APPEND NMF_PC_LIBS_PRIVATE " -L${dir}")
  endif()
  string(APPEND NMF_PC_LIBS_PRIVATE " -l${name}")
endforeach()
string(STRIP "${NMF_PC_LIBS_PRIVATE}" NMF_PC_LIBS_PRIVATE)
# The prefix is only known at install time (`cmake --install build --prefix DIR`), so the file is
# written then, from the template, with the prefix of that install.
install(CODE "
  set(NMF_PC_PREFIX \"\${CMAKE_INSTALL_PREFIX}\")
  set(CMAKE_INSTALL_LIBDIR \"${CMAKE_INSTALL_LIBDIR}\")
  set(CMAKE_INSTALL_INCLUDEDIR \"${CMAKE_INSTALL_INCLUDEDIR}\")
  set(PROJECT_VERSION \"${PROJECT_VERSION}\")
  set(NMF_PC_REQUIRES_PRIVATE \"${NMF_PC_REQUIRES_PRIVATE}\")
  set(NMF_PC_LIBS_PRIVATE \"${NMF_PC_LIBS_PRIVATE}\")
  configure_file(\"${PROJECT_SOURCE_DIR}/cmake/nmformer.pc.in\" \"${PROJECT_BINARY_DIR}/pkgconfig/nmformer.pc\" @ONLY)
")
install(FILES ${PROJECT_BINARY_DIR}/pkgconfig/nmformer.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
