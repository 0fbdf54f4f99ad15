# brainlatent_read_sources(<out-var> <kind>): the absolute paths of the '<kind>:' lines of
# native/sources.txt, the list binding.gyp reads too.
function(brainlatent_read_sources out kind)
  get_filename_component(_root "${CMAKE_CURRENT_FUNCTION_LIST_DIR}/.." ABSOLUTE)
  file(STRINGS "${_root}/native/sources.txt" _lines)
  # Re-run CMake when the list changes, so a new source is never silently left out of a build.
  set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS "${_root}/native/sources.txt")
  set(_result "")
  foreach(_line IN LISTS _lines)
    if(_line MATCHES "^${kind}:[ \t]*(.+)$")
      string(STRIP "${CMAKE_MATCH_1}" _path)
      list(APPEND _result "${_root}/${_path}")
    endif()
  endforeach()
  set(${out} "${_result}" PARENT_SCOPE)
endfunction()
