/* Container spec defaults. */
#include "runtime/runtime.h"

void rt_spec_init(struct rt_spec *s)
{
	memset(s, 0, sizeof(*s));
	s->namespaces = RT_NS_DEFAULT;
	s->no_new_privs = true;
	s->stdio[0] = s->stdio[1] = s->stdio[2] = -1;
}
