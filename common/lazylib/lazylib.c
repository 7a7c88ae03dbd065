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

static struct lazy_archive archive_table;
static const char *const archive_names[] = {LAZY_ARCHIVE(LAZY_NAME)};

static void archive_load(void)
{
	_Static_assert(sizeof(archive_table) ==
			   N_OF(archive_names) * sizeof(void *),
		       "one pointer per name");
	lazy_open("libarchive.so.13", archive_names, N_OF(archive_names),
		  (void **)&archive_table);
}

const struct lazy_archive *lazy_archive(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	pthread_once(&once, archive_load);
	return &archive_table;
}

static struct lazy_crypto crypto_table;
static const char *const crypto_names[] = {LAZY_CRYPTO(LAZY_NAME)};

static void crypto_load(void)
{
	_Static_assert(sizeof(crypto_table) ==
			   N_OF(crypto_names) * sizeof(void *),
		       "one pointer per name");
	lazy_open("libcrypto.so.3", crypto_names, N_OF(crypto_names),
		  (void **)&crypto_table);
}

const struct lazy_crypto *lazy_crypto(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	pthread_once(&once, crypto_load);
	return &crypto_table;
}
