# tests/sweep/artifacts.cmake — where the suite's runs of the agent leave
# their output, and the secret sweep that reads it last. Included by the
# top-level CMakeLists.txt before any module registers a test.
#
# Every test (add_test is wrapped below) gets, at the end of its directory:
#   XV_ARTIFACTS=<build>/test-artifacts   tests write their files there
#                                         (tests/hostsafe, tests/fault)
#   TMPDIR=<build>/test-artifacts/tmp     temp dirs a test leaves behind
#                                         stay in the build tree too
#   XDG_STATE_HOME=<that>/state           an agent run without
#                                         XENOVIA_TRACE_FILE / _SPOOL_DIR
#                                         writes its default trace file and
#                                         spool there, not in $HOME
#   PYTHONPATH=tests/sweep/keep           sitecustomize.py copies trace files,
#                                         agent stderr, spool and collector
#                                         files out of a Python test's temp dir
#                                         into XV_ARTIFACTS/kept/ just before
#                                         the test removes it (shutil.rmtree,
#                                         os.remove, os.unlink)
# C tests make their temp dirs with tests/sweep/keep.h (under $TMPDIR, moved
# to kept/ instead of removed) and shell scripts keep files with
# tests/sweep/keep.sh; sweep_selftest plants a secret through each of these.
# zz_secret_sweep then runs LAST: it DEPENDS on every other test of the
# tree, and ctest schedules by DEPENDS with or without -jN (DEPENDS orders
# without requiring the others to pass; tests filtered out with -R are
# not waited for); it is also RUN_SERIAL. It clears XV_ARTIFACTS after
# sweeping, so each run is judged on its own output.
set(XV_ARTIFACTS ${CMAKE_BINARY_DIR}/test-artifacts)
file(MAKE_DIRECTORY ${XV_ARTIFACTS}/tmp)
set(XV_SWEEP_ENV "XV_ARTIFACTS=${XV_ARTIFACTS}" "TMPDIR=${XV_ARTIFACTS}/tmp"
    "XDG_STATE_HOME=${XV_ARTIFACTS}/state"
    "PYTHONPATH=${PROJECT_SOURCE_DIR}/tests/sweep/keep")

function(xv_sweep_env name)
  if(TEST ${name})
    set_property(TEST ${name} APPEND PROPERTY ENVIRONMENT ${XV_SWEEP_ENV})
  endif()
endfunction()

# Deferred to the end of the test's directory, after its own
# set_tests_properties(... ENVIRONMENT ...), which would replace it.
macro(add_test)
  _add_test(${ARGV})
  if("${ARGV0}" STREQUAL "NAME")
    cmake_language(DEFER CALL xv_sweep_env ${ARGV1})
  endif()
endmacro()

function(xv_sweep_collect dir out)
  get_property(t DIRECTORY ${dir} PROPERTY TESTS)
  get_property(subs DIRECTORY ${dir} PROPERTY SUBDIRECTORIES)
  foreach(s ${subs})
    xv_sweep_collect(${s} st)
    list(APPEND t ${st})
  endforeach()
  set(${out} ${t} PARENT_SCOPE)
endfunction()

function(xv_sweep_register)
  if(XV_SANITIZE OR NOT EXISTS /usr/bin/python3)
    return()
  endif()
  xv_sweep_collect(${PROJECT_SOURCE_DIR} all)
  add_executable(xv_keep_selftest ${PROJECT_SOURCE_DIR}/tests/sweep/keep_selftest.c)
  _add_test(NAME sweep_selftest
            COMMAND /usr/bin/python3 ${PROJECT_SOURCE_DIR}/tests/sweep/sweep.py --selftest
                    --keep-helper $<TARGET_FILE:xv_keep_selftest>)
  # The suite's own XV_ARTIFACTS/XDG_STATE_HOME (to check where they point),
  # but not its PYTHONPATH/TMPDIR: the selftest's planted leaks must not be
  # kept for zz_secret_sweep.
  set(selftest_env ${XV_SWEEP_ENV})
  list(FILTER selftest_env EXCLUDE REGEX "^(PYTHONPATH|TMPDIR)=")
  set_tests_properties(sweep_selftest PROPERTIES LABELS sweep TIMEOUT 60
                       ENVIRONMENT "${selftest_env}")
  _add_test(NAME zz_secret_sweep
            COMMAND /usr/bin/python3 ${PROJECT_SOURCE_DIR}/tests/sweep/sweep.py --clear
                    ${XV_ARTIFACTS} ${CMAKE_BINARY_DIR}/Testing/Temporary)
  set_tests_properties(zz_secret_sweep PROPERTIES DEPENDS "${all};sweep_selftest" RUN_SERIAL ON
                       SKIP_RETURN_CODE 77 LABELS sweep TIMEOUT 300)
endfunction()
cmake_language(DEFER DIRECTORY ${PROJECT_SOURCE_DIR} CALL xv_sweep_register)
