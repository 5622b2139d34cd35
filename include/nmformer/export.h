/* NMF_API marks the functions a program may call. The library is compiled with
 * -fvisibility=hidden, so everything else (internal helpers shared between its files) stays out of
 * the shared library's export table and cannot collide with a host program's symbols. */
#ifndef NMFORMER_EXPORT_H
#define NMFORMER_EXPORT_H

/* NMF_BUILDING_LIBRARY is defined only while the library itself is compiled (CMakeLists.txt);
 * a user of the headers sees a plain declaration. */
#if defined(NMF_BUILDING_LIBRARY) && defined(__GNUC__)
#define NMF_API __attribute__((visibility("default")))
#else
#define NMF_API
#endif

#endif
