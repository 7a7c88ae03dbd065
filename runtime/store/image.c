/* The image store.
 *
 * $ORCH_ROOT/images/<id>/config.json holds an image's OCI config, byte for
 * byte (its sha256 is the id); $ORCH_ROOT/images/repositories.json maps
 * "name:tag" to ids.  Layers are found through the config's diff_ids, so a
 * layer's users are counted from the configs themselves and no separate
 * reference count can drift.  Writers of the index hold an flock on
 * $ORCH_ROOT/images/lock. */
#include "runtime/store/store_impl.h"

#include <ctype.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>

/* ---- references -------------------------------------------------------- */

bool is_hex_string(const char *s, size_t min_len)
{
	size_t n = 0;
	for (; s[n]; n++)
		if (!isdigit((unsigned char)s[n]) &&
		    !(s[n] >= 'a' && s[n] <= 'f'))
			return false;
	return n >= min_len;
}

/* ---- config JSON ------------------------------------------------------- */

static char **json_strv(json_t *arr)
{
	if (!json_is_array(arr))
		return NULL;
	char **v = xcalloc(1, sizeof(char *));
	size_t i;
	json_t *x;
	json_array_foreach(arr, i, x) if (json_is_string(x))
	    strv_push(&v, json_string_value(x));
	return v;
}

static char **json_keys(json_t *obj)
{
	if (!json_is_object(obj))
		return NULL;
	char **v = xcalloc(1, sizeof(char *));
	const char *k;
	json_t *x;
	json_object_foreach(obj, k, x) strv_push(&v, k);
	return v;
}

static char *json_str(json_t *obj, const char *key)
{
	const char *s = json_string_value(json_object_get(obj, key));
	return s && *s ? xstrdup(s) : NULL;
}

static json_t *strv_json(char *const *v)
{
	json_t *a = json_array();
	for (size_t i = 0; v && v[i]; i++)
		json_array_append_new(a, json_string(v[i]));
	return a;
}

static json_t *keys_json(char *const *v)
{
	json_t *o = json_object();
	for (size_t i = 0; v && v[i]; i++)
		json_object_set_new(o, v[i], json_object());
	return o;
}

int image_config_from_json(json_t *c, struct rt_image_config *cfg,
			   struct orch_err *e)
{
	memset(cfg, 0, sizeof(*cfg));
	if (!c || json_is_null(c))
		return 0;
	if (!json_is_object(c))
		return err_set(e, EINVAL,
			       "image config: \"config\" is not an "
			       "object");
	cfg->entrypoint = json_strv(json_object_get(c, "Entrypoint"));
	cfg->cmd = json_strv(json_object_get(c, "Cmd"));
	cfg->env = json_strv(json_object_get(c, "Env"));
	cfg->shell = json_strv(json_object_get(c, "Shell"));
	cfg->onbuild = json_strv(json_object_get(c, "OnBuild"));
	cfg->workdir = json_str(c, "WorkingDir");
	cfg->user = json_str(c, "User");
	cfg->stop_signal = json_str(c, "StopSignal");
	cfg->exposed_ports = json_keys(json_object_get(c, "ExposedPorts"));
	cfg->volumes = json_keys(json_object_get(c, "Volumes"));
	json_t *labels = json_object_get(c, "Labels");
	if (json_is_object(labels)) {
		const char *k;
		json_t *x;
		cfg->labels = xcalloc(1, sizeof(char *));
		json_object_foreach(labels, k, x)
		{
			_cleanup_free_ char *kv = xasprintf(
			    "%s=%s", k,
			    json_is_string(x) ? json_string_value(x) : "");
			strv_push(&cfg->labels, kv);
		}
	}
	json_t *hc = json_object_get(c, "Healthcheck");
	if (json_is_object(hc)) {
		struct rt_healthcheck *h = xcalloc(1, sizeof(*h));
		h->test = json_strv(json_object_get(hc, "Test"));
		h->interval_ns =
		    json_integer_value(json_object_get(hc, "Interval"));
		h->timeout_ns =
		    json_integer_value(json_object_get(hc, "Timeout"));
		h->start_period_ns =
		    json_integer_value(json_object_get(hc, "StartPeriod"));
		h->start_interval_ns =
		    json_integer_value(json_object_get(hc, "StartInterval"));
		h->retries =
		    (int)json_integer_value(json_object_get(hc, "Retries"));
		cfg->healthcheck = h;
	}
	return 0;
}

json_t *image_config_to_json(const struct rt_image_config *cfg)
{
	json_t *c = json_object();
	if (cfg->user)
		json_object_set_new(c, "User", json_string(cfg->user));
	if (cfg->exposed_ports)
		json_object_set_new(c, "ExposedPorts",
				    keys_json(cfg->exposed_ports));
	if (cfg->env)
		json_object_set_new(c, "Env", strv_json(cfg->env));
	if (cfg->entrypoint)
		json_object_set_new(c, "Entrypoint",
				    strv_json(cfg->entrypoint));
	if (cfg->cmd)
		json_object_set_new(c, "Cmd", strv_json(cfg->cmd));
	if (cfg->healthcheck) {
		const struct rt_healthcheck *h = cfg->healthcheck;
		json_t *hc = json_object();
		json_object_set_new(hc, "Test", strv_json(h->test));
		if (h->interval_ns)
			json_object_set_new(hc, "Interval",
					    json_integer(h->interval_ns));
		if (h->timeout_ns)
			json_object_set_new(hc, "Timeout",
					    json_integer(h->timeout_ns));
		if (h->start_period_ns)
			json_object_set_new(hc, "StartPeriod",
					    json_integer(h->start_period_ns));
		if (h->start_interval_ns)
			json_object_set_new(hc, "StartInterval",
					    json_integer(h->start_interval_ns));
		if (h->retries)
			json_object_set_new(hc, "Retries",
					    json_integer(h->retries));
		json_object_set_new(c, "Healthcheck", hc);
	}
	if (cfg->volumes)
		json_object_set_new(c, "Volumes", keys_json(cfg->volumes));
	if (cfg->workdir)
		json_object_set_new(c, "WorkingDir", json_string(cfg->workdir));
	if (cfg->labels) {
		json_t *l = json_object();
		for (size_t i = 0; cfg->labels[i]; i++) {
			const char *eq = strchr(cfg->labels[i], '=');
			_cleanup_free_ char *k =
			    eq ? xstrndup(cfg->labels[i],
					  (size_t)(eq - cfg->labels[i]))
			       : xstrdup(cfg->labels[i]);
			json_object_set_new(l, k,
					    json_string(eq ? eq + 1 : ""));
		}
		json_object_set_new(c, "Labels", l);
	}
	if (cfg->stop_signal)
		json_object_set_new(c, "StopSignal",
				    json_string(cfg->stop_signal));
	if (cfg->shell)
		json_object_set_new(c, "Shell", strv_json(cfg->shell));
	if (cfg->onbuild && cfg->onbuild[0])
		json_object_set_new(c, "OnBuild", strv_json(cfg->onbuild));
	return c;
}

void rt_image_config_clear(struct rt_image_config *c)
{
	strv_free(c->entrypoint);
	strv_free(c->cmd);
	strv_free(c->env);
	free(c->workdir);
	free(c->user);
	free(c->stop_signal);
	strv_free(c->exposed_ports);
	strv_free(c->volumes);
	strv_free(c->labels);
	strv_free(c->shell);
	strv_free(c->onbuild);
	if (c->healthcheck) {
		strv_free(c->healthcheck->test);
		free(c->healthcheck);
	}
	memset(c, 0, sizeof(*c));
}

void rt_image_free(struct rt_image *img)
{
	if (!img)
		return;
	strv_free(img->names);
	strv_free(img->digests);
	strv_free(img->layers);
	rt_image_config_clear(&img->config);
	free(img);
}

void rt_image_freep(struct rt_image **p)
{
	rt_image_free(*p);
}

/* ---- the index --------------------------------------------------------- */

static char *images_dir(void)
{
	return path_join(orch_root(), "images");
}

static char *image_path(const char *id, const char *file)
{
	return xasprintf("%s/images/%s/%s", orch_root(), id, file);
}

int store_lock(const char *name, int op, struct orch_err *e)
{
	_cleanup_free_ char *dir = images_dir();
	int r = mkdir_p(dir, 0700, e);
	if (r < 0)
		return r;
	_cleanup_free_ char *p = path_join(dir, name);
	int fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return err_sys(e, errno, "opening %s", p);
	if (RETRY_EINTR(flock(fd, op)) < 0) {
		r = err_sys(e, errno, "locking %s", p);
		close(fd);
		return r;
	}
	return fd;
}

static char *repos_path(void)
{
	return xasprintf("%s/images/repositories.json", orch_root());
}

/* The repositories map {"name:tag": id} read from fd (-ENOENT: no file,
 * an empty map), the file at path. */
static int repos_parse(int fd, const char *path, json_t **out,
		       struct orch_err *e)
{
	if (fd == -ENOENT) {
		*out = json_object();
		return 0;
	}
	/* Read whole: jansson reads a descriptor a byte per read(2). */
	char *txt;
	size_t len;
	int r = read_fd(fd, path, &txt, &len, e);
	if (r < 0)
		return r;
	json_error_t je;
	json_t *j = json_loadb(txt, len, 0, &je);
	free(txt);
	if (!json_is_object(j)) {
		json_decref(j);
		return err_set(e, EINVAL, "reading %s: %s", path, je.text);
	}
	*out = j;
	return 0;
}

/* An fd reading path, -ENOENT when there is none, else an error. */
static int repos_open(const char *path, struct orch_err *e)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT)
		return -ENOENT;
	if (fd < 0)
		return err_sys(e, errno, "opening %s", path);
	return fd;
}

/* The repositories map; an absent file is empty. */
static int repos_read(json_t **out, struct orch_err *e)
{
	_cleanup_free_ char *p = repos_path();
	int fd = repos_open(p, e);
	if (fd < 0 && fd != -ENOENT)
		return fd;
	int r = repos_parse(fd, p, out, e);
	if (fd >= 0)
		close(fd);
	return r;
}

/* up looks each service's image up twice, and services share images:
 * lookups keep the index they read while its file stays the same (its
 * inode, size and time: every write renames a new one in; ours also
 * forget it), and each image's config, whose name is its hash.  A
 * reference to the index, for reading only. */
static json_t *repos_kept;

static int repos_read_kept(json_t **out, struct orch_err *e)
{
	static struct stat kept_st;
	_cleanup_free_ char *p = repos_path();
	_cleanup_close_ int fd = repos_open(p, e);
	if (fd == -ENOENT)
		return repos_parse(fd, p, out, e);
	struct stat st;
	if (fd < 0)
		return fd;
	if (fstat(fd, &st) < 0)
		return err_sys(e, errno, "reading %s", p);
	if (!repos_kept || st.st_ino != kept_st.st_ino ||
	    st.st_dev != kept_st.st_dev || st.st_size != kept_st.st_size ||
	    st.st_mtim.tv_sec != kept_st.st_mtim.tv_sec ||
	    st.st_mtim.tv_nsec != kept_st.st_mtim.tv_nsec) {
		json_t *j;
		int r = repos_parse(fd, p, &j, e);
		if (r < 0)
			return r;
		json_decref(repos_kept);
		repos_kept = j;
		kept_st = st;
	}
	*out = json_incref(repos_kept);
	return 0;
}

static int repos_write(json_t *repos, struct orch_err *e)
{
	json_decref(repos_kept);
	repos_kept = NULL;
	_cleanup_free_ char *p = repos_path();
	_cleanup_free_ char *s =
	    json_dumps(repos, JSON_INDENT(2) | JSON_SORT_KEYS);
	return write_file_atomic(p, s, strlen(s), 0600, e);
}

static bool image_stored(const char *id)
{
	_cleanup_free_ char *p = image_path(id, "config.json");
	return access(p, F_OK) == 0;
}

/* Ids of all stored images. */
static char **image_ids(void)
{
	char **ids = xcalloc(1, sizeof(char *));
	_cleanup_free_ char *dir = images_dir();
	DIR *d = opendir(dir);
	if (!d)
		return ids;
	struct dirent *de;
	while ((de = readdir(d)))
		if (strlen(de->d_name) == 64 && is_hex_string(de->d_name, 64) &&
		    image_stored(de->d_name))
			strv_push(&ids, de->d_name);
	closedir(d);
	return ids;
}

static int64_t parse_created(const char *s)
{
	if (!s)
		return 0;
	struct tm tm = {0};
	if (!strptime(s, "%Y-%m-%dT%H:%M:%S", &tm))
		return 0;
	return (int64_t)timegm(&tm);
}

static void kept_json_decref(union kept v)
{
	json_decref(v.ptr);
}

/* Image id's config.json (kept: its name is its hash). */
static json_t *config_read(const char *id, json_error_t *je)
{
	static struct keep kept = {.drop = kept_json_decref};
	union kept v;
	if (keep_get(&kept, id, &v))
		return json_incref(v.ptr);
	_cleanup_free_ char *p = image_path(id, "config.json");
	json_t *j = json_load_file(p, 0, je);
	if (json_is_object(j))
		keep_put(&kept, id, (union kept){.ptr = json_incref(j)});
	return j;
}

/* Loads image id with its names from repos. */
static int image_load_id(const char *id, json_t *repos, struct rt_image **out,
			 struct orch_err *e)
{
	json_error_t je;
	json_t *j = config_read(id, &je);
	if (!json_is_object(j)) {
		json_decref(j);
		return err_set(e, EINVAL, "reading image %s: %s", id, je.text);
	}
	_cleanup_image_ struct rt_image *img = xcalloc(1, sizeof(*img));
	snprintf(img->id, sizeof(img->id), "%s", id);
	int r = image_config_from_json(json_object_get(j, "config"),
				       &img->config, e);
	if (r < 0) {
		json_decref(j);
		return err_wrap(e, "image %s", id);
	}
	img->layers = json_strv(
	    json_object_get(json_object_get(j, "rootfs"), "diff_ids"));
	if (!img->layers)
		img->layers = xcalloc(1, sizeof(char *));
	img->created =
	    parse_created(json_string_value(json_object_get(j, "created")));
	json_decref(j);
	for (size_t i = 0; img->layers[i]; i++)
		img->size += layer_size(img->layers[i]);
	img->names = xcalloc(1, sizeof(char *));
	const char *k;
	json_t *v;
	img->digests = xcalloc(1, sizeof(char *));
	json_object_foreach(repos, k, v) if (streq(json_string_value(v), id))
	    strv_push(strchr(k, '@') ? &img->digests : &img->names, k);
	*out = move_ptr(img);
	return 0;
}

/* Resolves ref to a stored image id: NAME[:TAG] first, then a unique id
 * prefix (with or without "sha256:"), as docker does. */
static int resolve_ref(const char *ref, json_t *repos, char id[65],
		       struct orch_err *e)
{
	_cleanup_free_ char *norm = NULL;
	if (image_ref_normalize(ref, &norm, NULL) == 0) {
		const char *v = json_string_value(json_object_get(repos, norm));
		if (v && image_stored(v)) {
			snprintf(id, 65, "%s", v);
			return 0;
		}
	}
	const char *hex = startswith(ref, "sha256:") ? ref + 7 : ref;
	if (*hex && strlen(hex) <= 64 && is_hex_string(hex, 1)) {
		_cleanup_strv_ char **ids = image_ids();
		const char *found = NULL;
		for (size_t i = 0; ids[i]; i++) {
			if (!startswith(ids[i], hex))
				continue;
			if (found)
				return err_set(e, EINVAL,
					       "image id prefix \"%s\" is "
					       "ambiguous",
					       ref);
			found = ids[i];
		}
		if (found) {
			snprintf(id, 65, "%s", found);
			return 0;
		}
	}
	return err_set(e, ENOENT, "no such image: %s", ref);
}

int rt_image_lookup(const char *ref, struct rt_image **out, struct orch_err *e)
{
	json_t *repos;
	int r = repos_read_kept(&repos, e);
	if (r < 0)
		return r;
	char id[65];
	r = resolve_ref(ref, repos, id, e);
	if (r == 0)
		r = image_load_id(id, repos, out, e);
	json_decref(repos);
	return r;
}

int rt_image_list(struct rt_image ***out, size_t *n, struct orch_err *e)
{
	json_t *repos;
	int r = repos_read(&repos, e);
	if (r < 0)
		return r;
	_cleanup_strv_ char **ids = image_ids();
	size_t cnt = strv_len(ids), k = 0;
	struct rt_image **v = xcalloc(cnt + 1, sizeof(*v));
	for (size_t i = 0; i < cnt; i++) {
		/* An image removed meanwhile is simply not listed. */
		if (image_load_id(ids[i], repos, &v[k], NULL) == 0)
			k++;
	}
	json_decref(repos);
	*out = v;
	*n = k;
	return 0;
}

char **rt_image_lowers(const struct rt_image *img)
{
	size_t n = strv_len(img->layers);
	char **v = xcalloc(n + 1, sizeof(char *));
	for (size_t i = 0; i < n; i++)
		v[i] = layer_dir(img->layers[n - 1 - i]);
	return v;
}

/* ---- writing ----------------------------------------------------------- */

int image_store_config(const char *config, size_t len, char *const *refs,
		       char id[65], struct orch_err *e)
{
	/* Validate the refs before anything is written. */
	_cleanup_strv_ char **norm = xcalloc(1, sizeof(char *));
	for (size_t i = 0; refs && refs[i]; i++) {
		_cleanup_free_ char *n = NULL;
		int r = image_ref_normalize(refs[i], &n, e);
		if (r < 0)
			return r;
		strv_push(&norm, n);
	}
	sha256_hex(config, len, id);
	_cleanup_close_ int lock = store_lock(STORE_INDEX_LOCK, LOCK_EX, e);
	if (lock < 0)
		return lock;
	_cleanup_free_ char *dir = xasprintf("%s/images/%s", orch_root(), id);
	int r = mkdir_p(dir, 0700, e);
	if (r < 0)
		return r;
	_cleanup_free_ char *p = image_path(id, "config.json");
	r = write_file_atomic(p, config, len, 0600, e);
	if (r < 0)
		return r;
	if (!norm[0])
		return 0;
	json_t *repos;
	r = repos_read(&repos, e);
	if (r < 0)
		return r;
	for (size_t i = 0; norm[i]; i++)
		json_object_set_new(repos, norm[i], json_string(id));
	r = repos_write(repos, e);
	json_decref(repos);
	return r;
}

/* Now, to the nanosecond as docker writes it: two builds of the same
 * steps within one second are still two images. */
static char *now_rfc3339(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	struct tm tm;
	gmtime_r(&ts.tv_sec, &tm);
	char buf[64];
	strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
	return xasprintf("%s.%09ldZ", buf, ts.tv_nsec);
}

int rt_image_commit(char *const *layers, const struct rt_image_config *cfg,
		    const struct rt_image_meta *meta, const char *ref,
		    char id[65], struct orch_err *e)
{
	_cleanup_close_ int lock = store_lock(STORE_LAYERS_LOCK, LOCK_SH, e);
	if (lock < 0)
		return lock;
	for (size_t i = 0; layers && layers[i]; i++)
		if (!layer_exists(layers[i]))
			return err_set(e, ENOENT,
				       "committing image: layer %s "
				       "is not in the store",
				       layers[i]);
	_cleanup_free_ char *created = now_rfc3339();
	json_t *j = json_object();
	json_object_set_new(j, "created", json_string(created));
	if (meta && meta->author)
		json_object_set_new(j, "author", json_string(meta->author));
	if (meta && meta->comment)
		json_object_set_new(j, "comment", json_string(meta->comment));
	json_object_set_new(j, "architecture", json_string("amd64"));
	json_object_set_new(j, "os", json_string("linux"));
	json_object_set_new(j, "config", image_config_to_json(cfg));
	json_t *rootfs = json_object();
	json_object_set_new(rootfs, "type", json_string("layers"));
	json_object_set_new(rootfs, "diff_ids", strv_json(layers));
	json_object_set_new(j, "rootfs", rootfs);
	_cleanup_free_ char *s = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	char *refs[] = {(char *)ref, NULL};
	return image_store_config(s, strlen(s), ref ? refs : NULL, id, e);
}

int rt_image_import(const char *tarball, const char *ref, char id[65],
		    struct orch_err *e)
{
	_cleanup_free_ char *norm = NULL;
	int r = image_ref_normalize(ref, &norm, e);
	if (r < 0)
		return r;
	_cleanup_close_ int lock = store_lock(STORE_LAYERS_LOCK, LOCK_SH, e);
	if (lock < 0)
		return lock;
	_cleanup_free_ char *diff = NULL;
	r = layer_store(tarball, NULL, &diff, e);
	if (r < 0)
		return err_wrap(e, "importing %s", tarball);
	struct rt_image_config cfg = {0};
	char *layers[] = {diff, NULL};
	r = rt_image_commit(layers, &cfg, NULL, norm, id, e);
	if (r < 0)
		return err_wrap(e, "importing %s", tarball);
	return 0;
}

int rt_image_tag(const char *ref, const char *new_ref, struct orch_err *e)
{
	_cleanup_free_ char *norm = NULL;
	int r = image_ref_normalize(new_ref, &norm, e);
	if (r < 0)
		return r;
	if (strchr(norm, '@'))
		return err_set(e, EINVAL,
			       "tagging %s as %s: a tag cannot name a digest",
			       ref, new_ref);
	_cleanup_close_ int lock = store_lock(STORE_INDEX_LOCK, LOCK_EX, e);
	if (lock < 0)
		return lock;
	json_t *repos;
	r = repos_read(&repos, e);
	if (r < 0)
		return r;
	char id[65];
	r = resolve_ref(ref, repos, id, e);
	if (r == 0) {
		json_object_set_new(repos, norm, json_string(id));
		r = repos_write(repos, e);
	}
	json_decref(repos);
	return r;
}

int image_config_read(const char *id, char **data, size_t *len,
		      struct orch_err *e)
{
	_cleanup_free_ char *p = image_path(id, "config.json");
	return read_file(p, data, len, e);
}

int rt_image_inspect_json(const char *ref, char **json, struct orch_err *e)
{
	struct rt_image *img = NULL;
	int r = rt_image_lookup(ref, &img, e);
	if (r < 0 || !img)
		return r < 0 ? r : -ENOENT;
	_cleanup_free_ char *p = image_path(img->id, "config.json");
	json_error_t je;
	json_t *j = json_load_file(p, 0, &je);
	if (!j) {
		r = err_set(e, EINVAL, "reading image %s: %s", img->id,
			    je.text);
		rt_image_free(img);
		return r;
	}
	json_t *out = json_object();
	json_object_set_new(out, "Id", json_sprintf("sha256:%s", img->id));
	json_object_set_new(out, "RepoTags", strv_json(img->names));
	json_object_set_new(out, "RepoDigests", strv_json(img->digests));
	json_object_set_new(out, "Created",
			    json_incref(json_object_get(j, "created")));
	json_t *author = json_object_get(j, "author"),
	       *comment = json_object_get(j, "comment");
	json_object_set_new(out, "Author",
			    json_is_string(author) ? json_incref(author)
						   : json_string(""));
	json_object_set_new(out, "Comment",
			    json_is_string(comment) ? json_incref(comment)
						    : json_string(""));
	json_object_set_new(out, "Size", json_integer(img->size));
	json_object_set(out, "Architecture",
			json_object_get(j, "architecture"));
	json_object_set(out, "Os", json_object_get(j, "os"));
	json_t *cfg = json_object_get(j, "config");
	json_object_set(out, "Config", cfg ? cfg : json_object());
	json_t *rootfs = json_object();
	json_object_set_new(rootfs, "Type", json_string("layers"));
	json_object_set_new(rootfs, "Layers", strv_json(img->layers));
	json_object_set_new(out, "RootFS", rootfs);
	*json = json_dumps(out, JSON_INDENT(4));
	json_decref(out);
	json_decref(j);
	rt_image_free(img);
	return 0;
}

/* ---- removal ----------------------------------------------------------- */

static bool same_id(const char *v, const char *id)
{
	return v && streq(startswith(v, "sha256:") ? v + 7 : v, id);
}

/* A container uses an image when its runtime state records the image id:
 * $ORCH_RUN/runtime/<container>/image holds it, or the "image" key of
 * that directory's state.json does. */
static bool image_in_use(const char *id, char **user)
{
	_cleanup_free_ char *dir = path_join(orch_run(), "runtime");
	DIR *d = opendir(dir);
	if (!d)
		return false;
	bool used = false;
	struct dirent *de;
	while (!used && (de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		_cleanup_free_ char *p =
		    xasprintf("%s/%s/image", dir, de->d_name);
		_cleanup_free_ char *s = NULL;
		if (read_file(p, &s, NULL, NULL) == 0) {
			s[strcspn(s, "\n")] = '\0';
			used = same_id(s, id);
		} else {
			_cleanup_free_ char *sp =
			    xasprintf("%s/%s/state.json", dir, de->d_name);
			json_t *j = json_load_file(sp, 0, NULL);
			used = same_id(
			    json_string_value(json_object_get(j, "image")), id);
			json_decref(j);
		}
		if (used && user)
			*user = xstrdup(de->d_name);
	}
	closedir(d);
	return used;
}

/* Removes the layers in candidates that no stored image uses. */
static void remove_unused_layers(char *const *candidates)
{
	_cleanup_strv_ char **ids = image_ids();
	_cleanup_strv_ char **used = xcalloc(1, sizeof(char *));
	json_t *no_names = json_object();
	for (size_t i = 0; ids[i]; i++) {
		struct rt_image *img;
		if (image_load_id(ids[i], no_names, &img, NULL) < 0)
			continue;
		for (size_t k = 0; img->layers[k]; k++)
			strv_push(&used, img->layers[k]);
		rt_image_free(img);
	}
	json_decref(no_names);
	for (size_t i = 0; candidates[i]; i++) {
		if (strv_contains(used, candidates[i]))
			continue;
		_cleanup_free_ char *d = xasprintf(
		    "%s/layers/%s", orch_root(),
		    startswith(candidates[i], "sha256:") ? candidates[i] + 7
							 : candidates[i]);
		struct orch_err e = {0};
		if (rm_rf(d, &e) < 0)
			log_warn("removing layer: %s", e.msg);
	}
}

/* Drops ref from the index; *gone receives the image when it went away
 * altogether (its last name, or its id). */
static int image_unrecord(const char *ref, bool force, struct rt_image **gone,
			  struct orch_err *e)
{
	_cleanup_close_ int lock = store_lock(STORE_INDEX_LOCK, LOCK_EX, e);
	if (lock < 0)
		return lock;
	json_t *repos;
	int r = repos_read(&repos, e);
	if (r < 0)
		return r;
	char id[65];
	r = resolve_ref(ref, repos, id, e);
	if (r < 0) {
		json_decref(repos);
		return r;
	}
	_cleanup_image_ struct rt_image *img = NULL;
	r = image_load_id(id, repos, &img, e);
	if (r < 0) {
		json_decref(repos);
		return r;
	}
	/* NAME:TAG of an image with other names only removes that name. */
	_cleanup_free_ char *norm = NULL;
	bool by_name = image_ref_normalize(ref, &norm, NULL) == 0 &&
		       strv_contains(img->names, norm);
	if (by_name && strv_len(img->names) > 1) {
		json_object_del(repos, norm);
		r = repos_write(repos, e);
		json_decref(repos);
		return r;
	}
	if (!by_name && strv_len(img->names) > 1 && !force) {
		json_decref(repos);
		return err_set(e, EBUSY,
			       "image %.12s is tagged in several repositories; "
			       "remove it by name or with --force",
			       id);
	}
	_cleanup_free_ char *user = NULL;
	if (image_in_use(id, &user)) {
		json_decref(repos);
		return err_set(e, EBUSY,
			       "image %s (%.12s) is in use by container %s",
			       ref, id, user);
	}
	for (size_t i = 0; img->names[i]; i++)
		json_object_del(repos, img->names[i]);
	for (size_t i = 0; img->digests[i]; i++)
		json_object_del(repos, img->digests[i]);
	r = repos_write(repos, e);
	json_decref(repos);
	if (r < 0)
		return r;
	_cleanup_free_ char *dir = xasprintf("%s/images/%s", orch_root(), id);
	r = rm_rf(dir, e);
	if (r < 0)
		return r;
	*gone = move_ptr(img);
	return 0;
}

int rt_image_remove(const char *ref, bool force, struct orch_err *e)
{
	_cleanup_image_ struct rt_image *gone = NULL;
	int r = image_unrecord(ref, force, &gone, e);
	if (r < 0 || !gone)
		return r;
	/* Loads and commits hold the layers lock shared from the moment
	 * they find a layer stored until their image records it. */
	_cleanup_close_ int lock = store_lock(STORE_LAYERS_LOCK, LOCK_EX, e);
	if (lock < 0)
		return lock;
	remove_unused_layers(gone->layers);
	return 0;
}
