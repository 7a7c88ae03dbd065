/* orch commit: a service container's changes as a new image, as docker
 * compose commit makes it: the container's upper directory becomes one
 * more layer on its image's, under the image's config with the
 * container's environment and labels (as docker's container config
 * holds them), then the --change instructions; the container is paused
 * meanwhile unless --pause=false (as with compose, -p after commit is
 * --pause: the project's name goes before the command).  The image is tagged REPOSITORY[:TAG]
 * when given; its id is printed. */
#include "orchestrator/build/build.h"
#include "orchestrator/cli/cli.h"
#include "runtime/runtime.h"
#include "runtime/store/store.h"

enum { O_INDEX = CLI_OPT_LOCAL, O_PAUSE };

/* Container number index of service svc, running or not. */
static json_t *service_container(struct pstate *ps, const char *svc,
				 long long index)
{
	size_t i;
	json_t *c;
	json_array_foreach(state_containers(ps), i, c) if (
	    streq(jstr(c, "service") ?: "", svc) &&
	    jint(c, "number", 1) == index && jstr(c, "id")) return c;
	fprintf(stderr, "orch: service \"%s\" has no container %lld\n", svc,
		index);
	return NULL;
}

/* The image's config with the container's own environment (less the
 * HOSTNAME the runtime gives) and its labels added to the image's. */
static void container_config(struct rt_image_config *cfg, json_t *rec)
{
	json_t *spec = json_object_get(rec, "spec");
	size_t i;
	json_t *v;
	json_t *env = json_object_get(spec, "env");
	if (json_is_array(env)) {
		strv_free(cfg->env);
		cfg->env = xcalloc(1, sizeof(char *));
		json_array_foreach(env, i, v) if (
		    json_is_string(v) &&
		    !startswith(json_string_value(v), "HOSTNAME="))
		    strv_push(&cfg->env, json_string_value(v));
	}
	const char *k;
	json_object_foreach(json_object_get(rec, "labels"), k, v)
	    if (json_is_string(v))
		build_kv_set(&cfg->labels, k, json_string_value(v));
}

int cmd_commit(int argc, char **argv)
{
	static const char usage[] =
	    "[-a AUTHOR] [-m MESSAGE] [-c CHANGE]... [-p|--pause=false] "
	    "[--index N] SERVICE [REPOSITORY[:TAG]]";
	static const struct option lopts[] = {
		CLI_GLOBAL_LONGOPTS,
		{"author", required_argument, NULL, 'a'},
		{"message", required_argument, NULL, 'm'},
		{"change", required_argument, NULL, 'c'},
		{"pause", optional_argument, NULL, O_PAUSE},
		{"index", required_argument, NULL, O_INDEX},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	_cleanup_strv_ char **changes = xcalloc(1, sizeof(char *));
	const char *author = NULL, *message = NULL;
	bool pause = true;
	long long index = 1;
	int c;
	optind = 1;
	while ((c = cli_getopt_own(argc, argv, "a:m:c:phf:", lopts, "p")) !=
	       -1) {
		if (c == CLI_OPT_BAD)
			return 2;
		switch (c) {
		case 'a':
			author = optarg;
			break;
		case 'm':
			message = optarg;
			break;
		case 'c':
			strv_push(&changes, optarg);
			break;
		case 'p':
			pause = true;
			break;
		case O_PAUSE:
			if (optarg && !streq(optarg, "true") &&
			    !streq(optarg, "false")) {
				fprintf(stderr, "orch commit: --pause takes "
						"true or false, not \"%s\"\n",
					optarg);
				return 2;
			}
			pause = !optarg || streq(optarg, "true");
			break;
		case O_INDEX:
			if (cli_opt_num("commit", "--index", optarg, 1, INT_MAX,
					&index) < 0)
				return 2;
			break;
		case 'h':
			printf("Usage: orch commit %s\n", usage);
			return 0;
		default:
			return cli_usage("commit", usage);
		}
	}
	if (argc - optind < 1 || argc - optind > 2)
		return cli_usage("commit", usage);
	const char *svc = argv[optind], *ref = argv[optind + 1];
	struct orch_err e = {0};
	_cleanup_free_ char *norm = NULL;
	if (ref && image_ref_normalize(ref, &norm, &e) < 0)
		return cli_fail(&e);
	struct pstate ps;
	if (cli_read(&ps, NULL, &e) < 0)
		return cli_fail(&e);
	json_t *rec = service_container(&ps, svc, index);
	if (!rec) {
		pstate_close(&ps);
		return 1;
	}
	json_t *spec = json_object_get(rec, "spec");
	_cleanup_free_ char *id = xstrdup(jstr(rec, "id"));
	_cleanup_free_ char *name = xstrdup(jstr(rec, "name") ?: id);
	const char *image = jstr(spec, "image"), *dir = jstr(spec, "upper_dir");
	_cleanup_image_ struct rt_image *img = NULL;
	int r = 0;
	if (!image || !dir)
		r = err_set(&e, EINVAL, "%s runs on no image of the store",
			    name);
	else
		r = rt_image_lookup(image, &img, &e);
	struct rt_image_config cfg = {0};
	if (r == 0) {
		cfg = img->config;
		img->config = (struct rt_image_config){0};
		container_config(&cfg, rec);
		r = build_apply_changes(&cfg, changes, &e);
	}
	uint32_t base = jbool(spec, "userns")
			    ? (uint32_t)jint(spec, "userns_base", 0)
			    : 0;
	_cleanup_free_ char *upper = dir ? path_join(dir, "upper") : NULL;
	pstate_close(&ps);
	pid_t pid;
	struct orch_err ign = {0};
	bool paused = r == 0 && pause && rt_pid(id, &pid, &ign) == 0 &&
		      rt_pause(id, &e) == 0;
	_cleanup_free_ char *diff_id = NULL;
	if (r == 0)
		r = rt_layer_from_upper(upper, base, &diff_id, &e);
	if (paused)
		rt_resume(id, &ign);
	_cleanup_strv_ char **layers = r == 0 ? strv_copy(img->layers) : NULL;
	if (diff_id)
		strv_push(&layers, diff_id);
	char out[65];
	if (r == 0) {
		struct rt_image_meta meta = {.author = author,
					     .comment = message};
		r = rt_image_commit(layers, &cfg, &meta, norm, out, &e);
	}
	rt_image_config_clear(&cfg);
	if (r < 0) {
		err_wrap(&e, "committing %s", name);
		return cli_fail(&e);
	}
	printf("sha256:%s\n", out);
	return 0;
}
