# check_nm.cmake — ctest hooks_nm_u (see CMakeLists.txt here).
#   cmake -DNM=nm -DDEF=common/hooked.def -DAGENT=libxenovia.so
#         -DLIBS="a.a|b.so|..." -P check_nm.cmake
# Fails (FATAL_ERROR, listing library: name) when a module library names a
# hooked function as undefined, when LIBS is empty or a library is missing,
# or when libxenovia.so's defined dynamic symbols differ from the hooked names.

# The hooked names, read from hooked.def as preload/CMakeLists.txt reads it.
file(STRINGS ${DEF} lines REGEX "^XV_(LIBC|LIBC_VA|EXIT|CHK|SSL)\\(")
set(hooked)
foreach(line ${lines})
  string(REGEX MATCH "^XV_([A-Z_]+)\\(([A-Za-z0-9_]+)" m "${line}")
  set(kind ${CMAKE_MATCH_1}) # saved: MATCHES below resets CMAKE_MATCH_*
  set(name ${CMAKE_MATCH_2})
  if(kind STREQUAL "SSL" AND NOT line MATCHES "^XV_SSL\\([A-Za-z0-9_]+, *1,")
    continue()
  endif()
  list(APPEND hooked ${name})
endforeach()
list(LENGTH hooked n_hooked)
if(n_hooked LESS 10)
  message(FATAL_ERROR "read only ${n_hooked} hooked names from ${DEF}")
endif()

string(REPLACE "|" ";" libs "${LIBS}")
list(LENGTH libs n_libs)
if(n_libs LESS 5)
  message(FATAL_ERROR "only ${n_libs} module libraries to check: ${libs}")
endif()

set(bad)
foreach(lib ${libs})
  if(NOT EXISTS ${lib})
    message(FATAL_ERROR "${lib} was not built")
  endif()
  execute_process(COMMAND ${NM} -u ${lib} OUTPUT_VARIABLE out RESULT_VARIABLE rc
                  ERROR_QUIET)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${NM} -u ${lib} failed (${rc})")
  endif()
  # "                 U write" or "U write@GLIBC_2.2.5": the name before any @
  string(REGEX MATCHALL "U [A-Za-z0-9_.]+" undef "${out}")
  foreach(u ${undef})
    string(REGEX REPLACE "^U " "" name "${u}")
    list(FIND hooked ${name} at)
    if(at GREATER -1)
      get_filename_component(short ${lib} NAME)
      list(APPEND bad "${short}: ${name}")
    endif()
  endforeach()
endforeach()
if(bad)
  list(REMOVE_DUPLICATES bad)
  string(REPLACE ";" "\n  " bad_text "${bad}")
  message(FATAL_ERROR "module libraries call hooked names (use xv_real, common/xv_real.h):\n  ${bad_text}")
endif()
message(STATUS "${n_libs} module libraries name none of the ${n_hooked} hooked functions")

# libxenovia.so exports exactly the hooked names.
execute_process(COMMAND ${NM} -D --defined-only ${AGENT} OUTPUT_VARIABLE out RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${NM} -D ${AGENT} failed (${rc})")
endif()
string(REGEX MATCHALL "[0-9a-f]+ [TtWwiDdBb] [A-Za-z0-9_]+" defs "${out}")
set(exported)
foreach(d ${defs})
  string(REGEX REPLACE "^[0-9a-f]+ [A-Za-z] " "" name "${d}")
  list(APPEND exported ${name})
endforeach()
list(REMOVE_DUPLICATES exported)
set(missing ${hooked})
list(REMOVE_ITEM missing ${exported})
set(extra ${exported})
list(REMOVE_ITEM extra ${hooked})
if(missing OR extra)
  message(FATAL_ERROR "libxenovia.so exports differ from common/hooked.def: "
          "missing [${missing}] extra [${extra}]")
endif()
message(STATUS "libxenovia.so exports exactly the ${n_hooked} hooked names")
