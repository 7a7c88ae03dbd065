/* The tables of lazylib.h, filled at the first call.  Apart from the
 * rest of common: it depends on nothing of the house. */
#include "common/lazylib/lazylib.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

/* Fills the n pointers at table from lib's symbols, names[i] each. */
static void lazy_open(const char *lib, const char *const *names, size_t n,
		      void **table)
{
	void *h = dlopen(lib, RTLD_NOW | RTLD_LOCAL);
	for (size_t i = 0; h && i < n; i++)
		if (!(table[i] = dlsym(h, names[i]))) {
			fprintf(stderr, "orch: loading %s: it lacks %s\n", lib,
				names[i]);
			abort();
		}
	if (!h) {
		fprintf(stderr, "orch: loading %s: %s\n", lib, dlerror());
		abort();
	}
}

#define LAZY_NAME(f) #f,

/* lazy_<name>(): the table of struct lazy_<name>, filled from soname
 * with the functions of LIST at its first call. */
#define LAZY_TABLE(name, soname, LIST)                                         \
	static struct lazy_##name name##_table;                                \
	static const char *const name##_names[] = {LIST(LAZY_NAME)};           \
	_Static_assert(sizeof(name##_table) ==                                 \
			   N_OF(name##_names) * sizeof(void *),                \
		       "one pointer per name");                                \
	static void name##_load(void)                                          \
	{                                                                      \
		lazy_open(soname, name##_names, N_OF(name##_names),             \
			  (void **)&name##_table);                               \
	}                                                                      \
	const struct lazy_##name *lazy_##name(void)                            \
	{                                                                      \
		static pthread_once_t once = PTHREAD_ONCE_INIT;                \
		pthread_once(&once, name##_load);                              \
		return &name##_table;                                          \
	}

LAZY_TABLE(archive, "libarchive.so.13", LAZY_ARCHIVE)
LAZY_TABLE(crypto, "libcrypto.so.3", LAZY_CRYPTO)
LAZY_TABLE(md, "libmd.so.0", LAZY_MD)
