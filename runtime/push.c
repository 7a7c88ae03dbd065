/* Pushing an image from the store to a registry. */
#include "runtime/registry.h"

int rt_image_push(const char *ref, const struct rt_pull_opts *o, char **digest,
		  struct orch_err *e)
{
	(void)o;
	(void)digest;
	return err_set(e, ENOTSUP, "pushing %s: not supported yet", ref);
}
