/* nmf_version(): the version baked in when the library was built (include/nmformer/version.h is
 * generated from CMakeLists.txt). */
#include "nmformer/version.h"

const char *nmf_version(void) { return NMF_VERSION_STRING; }
