# Install-time helper for CMakeLists.txt: writes kcp.pc for the prefix the
# install actually uses. Inputs: VERSION, NATIVE_LIBS, KCP_INSTALL_LIBDIR,
# KCP_INSTALL_INCLUDEDIR, KCP_PC_IN, KCP_PC_OUT (and CMAKE_INSTALL_PREFIX).

set(PREFIX "${CMAKE_INSTALL_PREFIX}")
foreach(_kind LIBDIR INCLUDEDIR)
  if(IS_ABSOLUTE "${KCP_INSTALL_${_kind}}")
    set(${_kind} "${KCP_INSTALL_${_kind}}")
  else()
    # Relative to ${prefix}, as the Makefile writes it.
    set(${_kind} "\${prefix}/${KCP_INSTALL_${_kind}}")
  endif()
endforeach()
configure_file("${KCP_PC_IN}" "${KCP_PC_OUT}" @ONLY)
