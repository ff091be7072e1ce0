# Debian packages (CPack DEB, one per component): `bash deploy/setup.sh package` builds
# hwledger-agent_<version>_<arch>.deb and hwledger-server_<version>_<arch>.deb into build/dist/.
# Depends come from dpkg-shlibdeps on the stripped binaries (boost_json, spdlog, fmt, OpenSSL,
# sqlite3, ...), plus passwd for the system users the maintainer scripts create. The units are
# the repository's own, with ExecStart pointing at /usr/bin. Installing a package starts nothing:
# an agent needs `hwledger-agent enroll`, a server `hwledger-server init`, first (the units carry
# ConditionPathExists= on what those write).

# Packaged units: the hardened units of systemd/, for binaries in /usr/bin.
foreach(_unit hwledger-agent hwledger-server)
  file(READ ${CMAKE_SOURCE_DIR}/systemd/${_unit}.service _text)
  string(REPLACE "/usr/local/bin/" "/usr/bin/" _text "${_text}")
  file(WRITE ${CMAKE_BINARY_DIR}/packaging/${_unit}.service "${_text}")
endforeach()
configure_file(${CMAKE_SOURCE_DIR}/deploy/agent.example.json
               ${CMAKE_BINARY_DIR}/packaging/agent.example.json COPYONLY)

if(TARGET hwledger-agent)
  install(FILES ${CMAKE_BINARY_DIR}/packaging/hwledger-agent.service
          DESTINATION lib/systemd/system COMPONENT agent)
  install(FILES ${CMAKE_BINARY_DIR}/packaging/agent.example.json
          DESTINATION share/doc/hwledger-agent COMPONENT agent)
endif()
install(FILES ${CMAKE_BINARY_DIR}/packaging/hwledger-server.service
        DESTINATION lib/systemd/system COMPONENT server)
install(FILES ${CMAKE_SOURCE_DIR}/README.md ${CMAKE_SOURCE_DIR}/docs/security.md
        DESTINATION share/doc/hwledger-server COMPONENT server)

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME hwledger)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_VENDOR "hwLedger")
set(CPACK_PACKAGE_CONTACT "hwLedger maintainers <maintainers@hwledger.invalid>")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_PACKAGE_DIRECTORY ${CMAKE_BINARY_DIR}/dist)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_ALL agent server)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_SECTION admin)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_AGENT_PACKAGE_NAME hwledger-agent)
set(CPACK_DEBIAN_AGENT_PACKAGE_DEPENDS "passwd")
set(CPACK_DEBIAN_AGENT_DESCRIPTION
    "hwLedger GPU host agent\n The agent of an hwLedger fleet: GPU telemetry (NVML, nvidia-smi,\n rocm-smi, sysfs), a job supervisor and a durable outbox, served over mutual TLS.")
set(CPACK_DEBIAN_AGENT_PACKAGE_CONTROL_EXTRA
    ${CMAKE_SOURCE_DIR}/deploy/debian/agent/postinst ${CMAKE_SOURCE_DIR}/deploy/debian/agent/postrm)
set(CPACK_DEBIAN_SERVER_PACKAGE_NAME hwledger-server)
set(CPACK_DEBIAN_SERVER_PACKAGE_DEPENDS "passwd")
set(CPACK_DEBIAN_SERVER_DESCRIPTION
    "hwLedger fleet server and CLI\n The tamper-evident, event-sourced ledger of a GPU fleet, its REST API and fleet CA,\n and the hwledger operator CLI.")
set(CPACK_DEBIAN_SERVER_PACKAGE_CONTROL_EXTRA
    ${CMAKE_SOURCE_DIR}/deploy/debian/server/postinst ${CMAKE_SOURCE_DIR}/deploy/debian/server/postrm)
include(CPack)
