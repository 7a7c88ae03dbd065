/* Hostile layer tarballs: any input goes through the decompress-and-hash
 * pipeline and the extraction into a scratch $ORCH_ROOT, which must end
 * with either a stored layer or an error, never a crash; a second stage
 * checks that nothing appeared next to the store. */
#include "runtime/store/store.h"

#include <sys/stat.h>

static char base[64];

static void cleanup(void)
{
	rm_rf(base, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!base[0]) {
		snprintf(base, sizeof(base), "/tmp/orch-fuzz-layer.XXXXXX");
		if (!mkdtemp(base))
			abort();
		char *root = path_join(base, "root");
		setenv("ORCH_ROOT", root, 1);
		free(root);
		log_max = LOG_ERROR;
		atexit(cleanup);
	}
	char *in = path_join(base, "in.tar");
	FILE *f = fopen(in, "we");
	if (!f)
		abort();
	fwrite(data, 1, size, f);
	fclose(f);
	struct orch_err e = {0};
	char *diff = NULL;
	(void)layer_store(in, NULL, &diff, &e);
	free(diff);
	unlink(in);
	free(in);
	/* Only the store may hold anything in base. */
	char *root = path_join(base, "root");
	rm_rf(root, NULL);
	free(root);
	if (rmdir(base) == 0 || errno != ENOTEMPTY) {
		if (mkdir(base, 0700) < 0 && errno != EEXIST)
			abort();
	} else {
		abort(); /* something was written beside the store */
	}
	return 0;
}
