/* orch volume create|ls|inspect|rm|prune, and orch volumes: the
 * project's. */
#include "orchestrator/cli/cli.h"
#include "runtime/runtime.h"

#include <getopt.h>
#include <jansson.h>
#include <time.h>

/* Marks volumes created for anonymous mounts, as docker does; prune
 * removes only those unless --all. */

static int volume_usage(FILE *f, int code)
{
	fprintf(f, "Usage: orch volume COMMAND\n\n"
		   "Commands:\n"
		   "  create [--label K=V]... [-o size=SIZE] [NAME]\n"
		   "                        Create a volume (SIZE caps its "
		   "content)\n"
		   "  ls [-q]               List volumes\n"
		   "  inspect VOLUME...     Show volumes as JSON\n"
		   "  rm [-f] VOLUME...     Remove volumes\n"
		   "  prune [-a] [-f]       Remove unused (anonymous, or -a "
		   "all) volumes\n");
	return code;
}

static int volume_create(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"label", required_argument, 0, 'l'},
	    {"opt", required_argument, 0, 'o'},
	    {"driver", required_argument, 0, 'd'},
	    {0, 0, 0, 0}};
	struct rt_volume_opts o = {0};
	_cleanup_strv_ char **labels = xcalloc(1, sizeof(char *));
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "l:o:d:", opts, NULL)) != -1) {
		if (c == 'l') {
			strv_push(&labels, optarg);
		} else if (c == 'o') {
			if (!startswith(optarg, "size=")) {
				log_error("volume option \"%s\" is not "
					  "supported (only size=SIZE)",
					  optarg);
				return 2;
			}
			if (parse_bytes(optarg + 5, &o.size_limit) < 0 ||
			    o.size_limit <= 0) {
				log_error("invalid size \"%s\"", optarg + 5);
				return 2;
			}
		} else if (c == 'd') {
			if (!streq(optarg, "local")) {
				log_error("volume driver \"%s\" is not "
					  "supported (only local)",
					  optarg);
				return 2;
			}
		} else {
			return volume_usage(stderr, 2);
		}
	}
	if (argc - optind > 1)
		return volume_usage(stderr, 2);
	char gen[65];
	const char *name = optind < argc ? argv[optind] : NULL;
	if (!name) {
		random_id(gen);
		name = gen;
	}
	o.labels = labels;
	struct orch_err e = {0};
	bool exists;
	if (rt_volume_create(name, &o, &exists, &e) < 0) {
		log_error("%s", e.msg);
		return 1;
	}
	printf("%s\n", name);
	return 0;
}

static int volume_ls(int argc, char **argv)
{
	bool quiet = false;
	static const struct option opts[] = {{"quiet", no_argument, 0, 'q'},
					     {0, 0, 0, 0}};
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "q", opts, NULL)) != -1) {
		if (c != 'q')
			return volume_usage(stderr, 2);
		quiet = true;
	}
	if (optind != argc)
		return volume_usage(stderr, 2);
	struct orch_err e = {0};
	struct rt_volume **v;
	size_t n;
	if (rt_volume_list(&v, &n, &e) < 0) {
		log_error("%s", e.msg);
		return 1;
	}
	if (!quiet)
		printf("%-9s %s\n", "DRIVER", "VOLUME NAME");
	for (size_t i = 0; i < n; i++) {
		if (quiet)
			printf("%s\n", v[i]->name);
		else
			printf("%-9s %s\n", "local", v[i]->name);
		rt_volume_free(v[i]);
	}
	free(v);
	return 0;
}

static json_t *volume_json(const struct rt_volume *v)
{
	json_t *j = json_object();
	char created[64];
	time_t t = (time_t)v->created;
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(created, sizeof(created), "%Y-%m-%dT%H:%M:%SZ", &tm);
	json_object_set_new(j, "CreatedAt", json_string(created));
	json_object_set_new(j, "Driver", json_string("local"));
	json_t *labels = json_object();
	for (size_t i = 0; v->labels && v->labels[i]; i++) {
		const char *eq = strchr(v->labels[i], '=');
		_cleanup_free_ char *k =
		    eq ? xstrndup(v->labels[i], (size_t)(eq - v->labels[i]))
		       : xstrdup(v->labels[i]);
		json_object_set_new(labels, k, json_string(eq ? eq + 1 : ""));
	}
	json_object_set_new(j, "Labels", labels);
	json_object_set_new(j, "Mountpoint", json_string(v->mountpoint));
	json_object_set_new(j, "Name", json_string(v->name));
	json_t *opts = json_object();
	if (v->size_limit > 0)
		json_object_set_new(
		    opts, "size",
		    json_sprintf("%lld", (long long)v->size_limit));
	json_object_set_new(j, "Options", opts);
	json_object_set_new(j, "Scope", json_string("local"));
	return j;
}

static int volume_inspect(int argc, char **argv)
{
	if (argc < 2)
		return volume_usage(stderr, 2);
	json_t *arr = json_array();
	int rc = 0;
	for (int i = 1; i < argc; i++) {
		struct orch_err e = {0};
		struct rt_volume *v;
		if (rt_volume_get(argv[i], &v, &e) < 0) {
			log_error("%s", e.msg);
			rc = 1;
			continue;
		}
		json_array_append_new(arr, volume_json(v));
		rt_volume_free(v);
	}
	_cleanup_free_ char *s = json_dumps(arr, JSON_INDENT(4));
	printf("%s\n", s);
	json_decref(arr);
	return rc;
}

static int volume_rm(int argc, char **argv)
{
	static const struct option opts[] = {{"force", no_argument, 0, 'f'},
					     {0, 0, 0, 0}};
	bool force = false;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "f", opts, NULL)) != -1) {
		if (c != 'f')
			return volume_usage(stderr, 2);
		force = true;
	}
	if (optind >= argc)
		return volume_usage(stderr, 2);
	int rc = 0;
	for (int i = optind; i < argc; i++) {
		struct orch_err e = {0};
		if (rt_volume_remove(argv[i], &e) < 0) {
			/* --force: a missing volume is not an error. */
			if (!(force && e.code == ENOENT)) {
				log_error("%s", e.msg);
				rc = 1;
			}
			continue;
		}
		printf("%s\n", argv[i]);
	}
	return rc;
}

static int volume_prune(int argc, char **argv)
{
	static const struct option opts[] = {{"all", no_argument, 0, 'a'},
					     {"force", no_argument, 0, 'f'},
					     {0, 0, 0, 0}};
	bool all = false;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "af", opts, NULL)) != -1) {
		if (c == 'a')
			all = true;
		else if (c != 'f')
			return volume_usage(stderr, 2);
	}
	if (optind != argc)
		return volume_usage(stderr, 2);
	struct orch_err e = {0};
	struct rt_volume **v;
	size_t n;
	if (rt_volume_list(&v, &n, &e) < 0) {
		log_error("%s", e.msg);
		return 1;
	}
	int rc = 0;
	bool header = false;
	for (size_t i = 0; i < n; i++) {
		bool anon = false, used = false;
		for (size_t k = 0; v[i]->labels[k]; k++)
			if (startswith(v[i]->labels[k], ANON_LABEL "="))
				anon = true;
		if ((all || anon) &&
		    rt_volume_in_use(v[i]->name, &used, NULL, &e) == 0 &&
		    !used) {
			if (rt_volume_remove(v[i]->name, &e) < 0) {
				log_error("%s", e.msg);
				rc = 1;
			} else {
				if (!header)
					printf("Deleted Volumes:\n");
				header = true;
				printf("%s\n", v[i]->name);
			}
		}
		rt_volume_free(v[i]);
	}
	free(v);
	return rc;
}

/* The project's volumes (named and anonymous) that the containers of
 * services mount, all of them when services is empty. */
static char **project_volumes(struct pstate *ps, char *const *services)
{
	char **names = xcalloc(1, sizeof(char *));
	json_t *vols = json_object_get(ps->state, "volumes");
	size_t i, k;
	json_t *v, *rec;
	if (!services[0])
		json_array_foreach(vols, i, v) if (jstr(v, "name"))
		    strv_add_unique(&names, jstr(v, "name"));
	/* Kept for a container an up failed to make ("SERVICE#N"). */
	const char *key;
	json_t *kept;
	json_object_foreach(json_object_get(ps->state, "anon_kept"), key, kept)
	{
		size_t n = strcspn(key, "#");
		bool want = !services[0];
		for (size_t s = 0; services[s]; s++)
			want |= strlen(services[s]) == n &&
				!strncmp(services[s], key, n);
		const char *t;
		json_object_foreach(kept, t, v) if (want && json_is_string(v))
		    strv_add_unique(&names, json_string_value(v));
	}
	json_array_foreach(state_containers(ps), i, rec)
	{
		if (services[0] &&
		    !strv_contains(services, jstr(rec, "service") ?: ""))
			continue;
		json_array_foreach(json_object_get(rec, "named_volumes"), k, v)
		{
			const char *key = json_string_value(v);
			size_t j;
			json_t *nv;
			json_array_foreach(vols, j, nv) if (
			    key && streq(jstr(nv, "key") ?: "", key) &&
			    jstr(nv, "name"))
			    strv_add_unique(&names, jstr(nv, "name"));
		}
		json_array_foreach(json_object_get(rec, "anon_volumes"), k, v)
		    if (json_is_string(v))
			strv_add_unique(&names, json_string_value(v));
	}
	return names;
}

/* orch volumes [SERVICE...]: as docker compose volumes lists them. */
int cmd_volumes(int argc, char **argv)
{
	static const char usage[] =
	    "[-q] [--format table|json|TEMPLATE] [SERVICE...]";
	static const struct option lopts[] = {
		CLI_GLOBAL_LONGOPTS,
		{"quiet", no_argument, NULL, 'q'},
		{"format", required_argument, NULL, 'F'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	bool quiet = false;
	const char *fmt = "table";
	int c;
	optind = 1;
	while ((c = cli_getopt(argc, argv, "qh" CLI_GLOBAL_SHORTOPTS,
			       lopts)) != -1) {
		if (c == CLI_OPT_BAD)
			return 2;
		if (c == 'q')
			quiet = true;
		else if (c == 'F')
			fmt = optarg;
		else if (c == 'h') {
			printf("Usage: orch volumes %s\n", usage);
			return 0;
		} else
			return cli_usage("volumes", usage);
	}
	struct pstate ps;
	struct orch_err e = {0};
	_cleanup_strv_ char **services = xcalloc(1, sizeof(char *));
	for (int i = optind; i < argc; i++)
		strv_push(&services, argv[i]);
	struct project *m = NULL;
	if (cli_read(&ps, &m, &e) < 0)
		return cli_fail(&e);
	for (size_t i = 0; services[i]; i++)
		if (m && !project_service(m, services[i])) {
			fprintf(stderr, "orch: no such service: %s\n",
				services[i]);
			pstate_close(&ps);
			return 1;
		}
	_cleanup_strv_ char **names = project_volumes(&ps, services);
	pstate_close(&ps);
	json_t *rows = json_array();
	for (size_t i = 0; names[i]; i++) {
		struct rt_volume *v;
		struct orch_err ign = {0};
		if (rt_volume_get(names[i], &v, &ign) < 0)
			continue;
		json_array_append_new(rows, volume_json(v));
		rt_volume_free(v);
	}
	size_t i;
	json_t *row;
	int r = 0;
	if (quiet) {
		json_array_foreach(rows, i, row) printf("%s\n", jstr(row, "Name"));
	} else if (streq(fmt, "json")) {
		json_array_foreach(rows, i, row)
		{
			_cleanup_free_ char *t = json_dumps(row, JSON_COMPACT);
			printf("%s\n", t);
		}
	} else if (streq(fmt, "table")) {
		printf("%-9s %s\n", "DRIVER", "VOLUME NAME");
		json_array_foreach(rows, i, row)
		    printf("%-9s %s\n", "local", jstr(row, "Name"));
	} else {
		r = format_print(fmt, rows, &e);
	}
	json_decref(rows);
	return r < 0 ? cli_fail(&e) : 0;
}

int cmd_volume(int argc, char **argv)
{
	if (argc < 2)
		return volume_usage(stderr, 2);
	const char *sub = argv[1];
	if (streq(sub, "--help") || streq(sub, "-h") || streq(sub, "help") ||
	    args_want_help(argc - 1, argv + 1))
		return volume_usage(stdout, 0);
	if (streq(sub, "create"))
		return volume_create(argc - 1, argv + 1);
	if (streq(sub, "ls") || streq(sub, "list"))
		return volume_ls(argc - 1, argv + 1);
	if (streq(sub, "inspect"))
		return volume_inspect(argc - 1, argv + 1);
	if (streq(sub, "rm") || streq(sub, "remove"))
		return volume_rm(argc - 1, argv + 1);
	if (streq(sub, "prune"))
		return volume_prune(argc - 1, argv + 1);
	fprintf(stderr, "orch volume: unknown command \"%s\"\n", sub);
	return volume_usage(stderr, 2);
}
