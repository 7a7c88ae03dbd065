/* A container record's "spec" object -> struct rt_spec.  The record is
 * what the supervisor keeps to (re)create a container at any time, so it
 * holds everything the runtime needs and nothing compose-specific. */
#include "orchestrator/engine/engine.h"
#include "runtime/runtime.h"

/* Borrowed string array: pointers into the JSON, array malloc'ed. */
static char **borrow_strv(const json_t *o, const char *key)
{
	json_t *a = json_object_get(o, key);
	if (!json_is_array(a))
		return NULL;
	char **v = xcalloc(json_array_size(a) + 1, sizeof(char *));
	size_t i, n = 0;
	json_t *s;
	json_array_foreach(a, i, s)
	{
		if (json_is_string(s))
			v[n++] = (char *)json_string_value(s);
	}
	return v;
}

int ctrspec_load(const json_t *j, struct rt_spec *s, struct orch_err *e)
{
	if (!json_is_object(j))
		return err_set(e, EINVAL, "container record has no spec");
	s->image = jstr(j, "image");
	s->lowers = borrow_strv(j, "lowers");
	s->rootfs = jstr(j, "rootfs");
	s->upper_dir = jstr(j, "upper_dir");
	s->readonly_rootfs = jbool(j, "readonly_rootfs");
	s->argv = borrow_strv(j, "argv");
	if (!s->argv || !s->argv[0])
		return err_set(e, EINVAL, "container record has no command");
	s->env = borrow_strv(j, "env");
	s->workdir = jstr(j, "workdir");
	s->uid = (uid_t)jint(j, "uid", 0);
	s->gid = (gid_t)jint(j, "gid", 0);
	json_t *g = json_object_get(j, "groups");
	if (json_is_array(g) && json_array_size(g) > 0) {
		s->groups = xcalloc(json_array_size(g), sizeof(gid_t));
		size_t i;
		json_t *v;
		json_array_foreach(g, i, v) s->groups[s->n_groups++] =
			(gid_t)json_integer_value(v);
	}
	s->hostname = jstr(j, "hostname");
	s->domainname = jstr(j, "domainname");
	s->shm_size = jint(j, "shm_size", 0);
	s->has_oom_score_adj = json_object_get(j, "oom_score_adj") != NULL;
	s->oom_score_adj = (int)jint(j, "oom_score_adj", 0);
	s->netns_path = jstr(j, "netns");
	s->pid_join = (pid_t)jint(j, "pid_join", 0);
	s->ipc_join = (pid_t)jint(j, "ipc_join", 0);
	if (json_object_get(j, "namespaces"))
		s->namespaces = (unsigned)jint(j, "namespaces", RT_NS_DEFAULT);
	if (s->netns_path)
		s->namespaces &= ~(unsigned)RT_NS_NET;
	json_int_t base = jint(j, "userns_base", 0);
	if (jbool(j, "userns") && base > 0) {
		s->uid_map = s->gid_map = xcalloc(1, sizeof(*s->uid_map));
		*s->uid_map = (struct rt_idmap){0, (uint32_t)base, RT_IDRANGE_SIZE};
		s->n_uid_map = s->n_gid_map = 1;
		s->namespaces |= RT_NS_USER;
	} else if (jbool(j, "keep_id")) {
		struct rt_ids ids;
		int r = rt_keepid_ids(&ids, e);
		if (r < 0)
			return r;
		/* One block, freed through uid_map. */
		s->uid_map = xcalloc(ARRAY_SIZE(ids.uid) + ARRAY_SIZE(ids.gid),
				     sizeof(*s->uid_map));
		s->gid_map = s->uid_map + ARRAY_SIZE(ids.uid);
		memcpy(s->uid_map, ids.uid, sizeof(ids.uid));
		memcpy(s->gid_map, ids.gid, sizeof(ids.gid));
		s->n_uid_map = ids.n_uid;
		s->n_gid_map = ids.n_gid;
		s->namespaces |= RT_NS_USER;
	}

	json_t *m = json_object_get(j, "mounts");
	if (json_is_array(m) && json_array_size(m) > 0) {
		s->mounts = xcalloc(json_array_size(m), sizeof(*s->mounts));
		size_t i;
		json_t *v;
		json_array_foreach(m, i, v)
		{
			struct rt_mount *mt = &s->mounts[s->n_mounts++];
			const char *t = jstr(v, "type");
			mt->type = t && streq(t, "tmpfs")    ? RT_MOUNT_TMPFS
				   : t && streq(t, "volume") ? RT_MOUNT_VOLUME
							     : RT_MOUNT_BIND;
			mt->source = (char *)jstr(v, "source");
			mt->target = (char *)jstr(v, "target");
			mt->readonly = jbool(v, "readonly");
			if (jbool(v, "idmap"))
				mt->idmap = RT_IDMAP_HOST;
			mt->size = jint(v, "size", 0);
			mt->mode = (mode_t)jint(v, "mode", 0);
			if (!mt->target)
				return err_set(e, EINVAL,
					       "mount without a target");
		}
	}
	s->sysctls = borrow_strv(j, "sysctls");
	s->cap_add = borrow_strv(j, "cap_add");
	s->cap_drop = borrow_strv(j, "cap_drop");
	s->privileged = jbool(j, "privileged");
	s->devices = borrow_strv(j, "devices");
	s->device_rules = borrow_strv(j, "device_rules");
	json_t *r = json_object_get(j, "rlimits");
	if (json_is_array(r) && json_array_size(r) > 0) {
		s->rlimits = xcalloc(json_array_size(r), sizeof(*s->rlimits));
		size_t i;
		json_t *v;
		json_array_foreach(r, i, v)
		{
			struct rt_rlimit *rl = &s->rlimits[s->n_rlimits++];
			rl->resource = (int)jint(v, "resource", 0);
			rl->soft = (uint64_t)jint(v, "soft", 0);
			rl->hard = (uint64_t)jint(v, "hard", 0);
		}
	}
	json_t *l = json_object_get(j, "limits");
	if (json_is_object(l)) {
		s->limits.memory = jint(l, "memory", 0);
		s->limits.memory_swap = jint(l, "memory_swap", 0);
		s->limits.memory_reservation =
		    jint(l, "memory_reservation", 0);
		json_t *c = json_object_get(l, "cpus");
		s->limits.cpus = json_is_number(c) ? json_number_value(c) : 0;
		s->limits.cpu_shares = (uint64_t)jint(l, "cpu_shares", 0);
		s->limits.pids = jint(l, "pids", 0);
		s->limits.cpuset_cpus = jstr(l, "cpuset_cpus");
		json_t *sw = json_object_get(l, "swappiness");
		s->limits.swappiness = json_is_integer(sw)
					   ? (int)json_integer_value(sw) + 1
					   : 0;
		s->limits.oom_kill_disable = jbool(l, "oom_kill_disable");
		s->limits.blkio_weight = (unsigned)jint(l, "blkio_weight", 0);
		json_t *b = json_object_get(l, "blkio");
		size_t n = json_array_size(b);
		struct rt_blkio_dev *d = n ? xcalloc(n, sizeof(*d)) : NULL;
		for (size_t i = 0; i < n; i++) {
			json_t *o = json_array_get(b, i);
			int64_t kind = jint(o, "kind", -1);
			if (kind < RT_BLKIO_WEIGHT || kind > RT_BLKIO_WRITE_IOPS) {
				free(d);
				return err_set(e, EINVAL,
					       "blkio entry %zu: unknown kind", i);
			}
			d[i].kind = (enum rt_blkio_kind)kind;
			d[i].major = (unsigned)jint(o, "major", 0);
			d[i].minor = (unsigned)jint(o, "minor", 0);
			d[i].value = (uint64_t)jint(o, "value", 0);
		}
		s->limits.blkio = d;
		s->limits.n_blkio = n;
	}
	s->cgroup_parent = jstr(j, "cgroup_parent");
	s->init = jbool(j, "init");
	s->stop_signal = (int)jint(j, "stop_signal", 0);
	return 0;
}

void ctrspec_clear(struct rt_spec *s)
{
	free((void *)s->limits.blkio);
	free(s->uid_map);
	free(s->lowers);
	free(s->argv);
	free(s->env);
	free(s->groups);
	free(s->mounts);
	free(s->sysctls);
	free(s->cap_add);
	free(s->cap_drop);
	free(s->devices);
	free(s->device_rules);
	free(s->rlimits);
	s->lowers = s->argv = s->env = s->sysctls = s->cap_add = s->cap_drop =
		s->devices = s->device_rules = NULL;
	s->groups = NULL;
	s->uid_map = s->gid_map = NULL;
	s->mounts = NULL;
	s->rlimits = NULL;
}

json_t *ctrspec_joined(struct pstate *ps, const json_t *spec,
		       struct orch_err *e)
{
	static const char *const kinds[][3] = {{"pid_of", "pid_join", "PID"},
					       {"ipc_of", "ipc_join", "IPC"}};
	json_t *copy = json_deep_copy(spec);
	for (size_t i = 0; copy && i < ARRAY_SIZE(kinds); i++) {
		const char *of = jstr(copy, kinds[i][0]);
		if (!of)
			continue;
		const char *id = jstr(state_container_find(ps, of), "id");
		pid_t pid = 0;
		struct orch_err ign = {0};
		if (!id || rt_pid(id, &pid, &ign) < 0) {
			err_set(e, ESRCH,
				"%s, whose %s namespace it shares, is not "
				"running",
				of, kinds[i][2]);
			json_decref(copy);
			return NULL;
		}
		json_object_set_new(copy, kinds[i][1], json_integer(pid));
	}
	return copy;
}
