# Writes daemon/version.hpp with the git revision of SOURCE_DIR as of this build (run by the
# version_header target at every build, not once at configure time). The file is rewritten only
# when its text changes, so an unchanged revision recompiles nothing. A tree without git (a
# tarball) says "unknown".
# Variables: SOURCE_DIR, INPUT (version.hpp.in), OUTPUT, PROJECT_VERSION.
execute_process(
  COMMAND git rev-parse --short=12 HEAD
  WORKING_DIRECTORY ${SOURCE_DIR}
  OUTPUT_VARIABLE MCBACKLOGD_REVISION
  OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
if(NOT MCBACKLOGD_REVISION)
  set(MCBACKLOGD_REVISION "unknown")
endif()
configure_file(${INPUT} ${OUTPUT} @ONLY)
