# nmf_link_name(<name_var> <dir_var> <dep>): how an installed package names a library that the build
# linked as <dep> (a file such as /usr/lib/gcc/x86_64-linux-gnu/12/libgomp.so, or a bare name such
# as m): its bare name (gomp) and the folder to search for it, "" when the compiler searches that
# folder anyway. Naming it so keeps the package valid when e.g. a compiler upgrade moves libgomp.
function(nmf_link_name name_var dir_var dep)
  set(name "${dep}")
  set(dir "")
  if(IS_ABSOLUTE "${dep}")
    get_filename_component(dir "${dep}" DIRECTORY)
    get_filename_component(name "${dep}" NAME)
    string(REGEX REPLACE "^lib" "" name "${name}")
    string(REGEX REPLACE "\\.(so|a)(\\.[0-9.]+)?$" "" name "${name}")
    if(dir IN_LIST CMAKE_C_IMPLICIT_LINK_DIRECTORIES)
      set(dir "")
    endif()
  endif()
  set(${name_var} "${name}" PARENT_SCOPE)
  set(${dir_var} "${dir}" PARENT_SCOPE)
endfunction()
