/* `orch kube generate`: the project (as `orch config` sees it) as
 * Kubernetes manifests, printed or written one file per object.  Nothing
 * is written unless every object could be made. */
#include "orchestrator/cli/cli.h"
#include "runtime/store/store.h"

#include <ctype.h>
#include <getopt.h>
#include <sys/stat.h>

static const char kube_usage_text[] =
    "generate [SERVICE...] [-o FILE|DIR] [--namespace NS]\n"
    "       [--publish clusterip|nodeport|loadbalancer|hostport]\n"
    "       [--allow-hostpath] [--wait-image IMAGE | --no-waits]";

static void kube_help(void)
{
	printf("Usage: orch kube %s\n\n"
	       "Write the project as Kubernetes manifests.\n\n"
	       "Options:\n"
	       "  -o, --output FILE|DIR   Write to FILE, or one file per "
	       "object to DIR\n"
	       "                          (an existing directory, or a "
	       "path ending in /)\n"
	       "  -n, --namespace NS      Namespace of every object "
	       "(default: the project's name)\n"
	       "      --publish HOW       Published ports as clusterip "
	       "(default), nodeport,\n"
	       "                          loadbalancer or hostport "
	       "Services/ports\n"
	       "      --allow-hostpath    Bind mounts as hostPath volumes "
	       "(else refused)\n"
	       "      --wait-image IMAGE  Image of the init containers "
	       "that wait for\n"
	       "                          dependencies (needs kubectl; "
	       "default %s)\n"
	       "      --no-waits          No such init containers, for "
	       "runtimes without the\n"
	       "                          Kubernetes API (podman kube "
	       "play)\n",
	       kube_usage_text, KUBE_WAIT_IMAGE);
}

/* ref as repo@digest of the manifest its image was pulled or pushed as,
 * in ref's own repository: the image a running container of the service
 * uses (state, when the project is up), else the store's image for ref;
 * NULL when it has none (an image built or loaded here). */
static char *pin_digest(const char *service, const char *ref, void *arg)
{
	json_t *running = arg;
	const char *id = json_string_value(json_object_get(running, service));
	struct orch_err e = {0};
	_cleanup_image_ struct rt_image *img = NULL;
	struct image_ref want = {0};
	if (rt_image_lookup(id ? id : ref, &img, &e) < 0 || !img->digests ||
	    image_ref_parse(ref, &want, &e) < 0)
		return NULL;
	_cleanup_free_ char *want_repo = image_ref_repo(&want);
	char *pinned = NULL;
	for (size_t i = 0; img->digests[i] && !pinned; i++) {
		struct image_ref got = {0};
		if (image_ref_parse(img->digests[i], &got, &e) < 0)
			continue;
		_cleanup_free_ char *repo = image_ref_repo(&got);
		if (got.digest && streq(repo, want_repo)) {
			_cleanup_free_ char *name = image_ref_familiar(&want);
			pinned = xasprintf("%s@%s", name, got.digest);
		}
		image_ref_clear(&got);
	}
	image_ref_clear(&want);
	return pinned;
}

static int write_docs(const char *output, const struct kube_doc *docs,
		      size_t n)
{
	struct stat st;
	size_t len = output ? strlen(output) : 0;
	bool dir = output && ((stat(output, &st) == 0 && S_ISDIR(st.st_mode)) ||
			      output[len - 1] == '/');
	struct orch_err e = {0};
	if (dir && mkdir_p(output, 0755, &e) < 0)
		return cli_fail(&e);
	struct strbuf all;
	sb_init(&all);
	sb_adds(&all, "");
	for (size_t i = 0; i < n; i++) {
		_cleanup_free_ char *y = yaml_render(docs[i].obj);
		if (!dir) {
			sb_adds(&all, "---\n");
			sb_adds(&all, y);
			continue;
		}
		_cleanup_free_ char *kind = xstrdup(docs[i].kind);
		for (char *c = kind; *c; c++)
			*c = (char)tolower((unsigned char)*c);
		_cleanup_free_ char *path = xasprintf(
		    "%s%s%s-%s.yaml", output,
		    output[len - 1] == '/' ? "" : "/", kind, docs[i].name);
		if (write_file_atomic(path, y, strlen(y), 0644, &e) < 0) {
			sb_free(&all);
			return cli_fail(&e);
		}
	}
	int rc = 0;
	if (!dir && output)
		rc = write_file_atomic(output, all.buf, all.len, 0644, &e) < 0
			 ? cli_fail(&e)
			 : 0;
	else if (!dir)
		fwrite(all.buf, 1, all.len, stdout);
	sb_free(&all);
	return rc;
}

static int kube_generate_cmd(int argc, char **argv)
{
	enum {
		O_PUBLISH = CLI_OPT_LOCAL,
		O_HOSTPATH,
		O_WAIT_IMAGE,
		O_NO_WAITS,
	};
	static const struct option lopts[] = {
	    CLI_GLOBAL_LONGOPTS,
	    {"output", required_argument, NULL, 'o'},
	    {"namespace", required_argument, NULL, 'n'},
	    {"publish", required_argument, NULL, O_PUBLISH},
	    {"allow-hostpath", no_argument, NULL, O_HOSTPATH},
	    {"wait-image", required_argument, NULL, O_WAIT_IMAGE},
	    {"no-waits", no_argument, NULL, O_NO_WAITS},
	    {"help", no_argument, NULL, 'h'},
	    {0, 0, 0, 0}};
	struct kube_opts o = {.wait_image = KUBE_WAIT_IMAGE,
			      .pin = pin_digest};
	const char *output = NULL;
	int c;
	optind = 1;
	while ((c = cli_getopt(argc, argv, "ho:n:" CLI_GLOBAL_SHORTOPTS,
			       lopts)) != -1) {
		switch (c) {
		case CLI_OPT_BAD:
			return 2;
		case 'h':
			kube_help();
			return 0;
		case 'o':
			output = optarg;
			break;
		case 'n':
			o.ns = optarg;
			break;
		case O_HOSTPATH:
			o.allow_hostpath = true;
			break;
		case O_WAIT_IMAGE:
			o.wait_image = optarg;
			break;
		case O_NO_WAITS:
			o.wait_image = NULL;
			break;
		case O_PUBLISH:
			if (streq(optarg, "clusterip"))
				o.publish = KUBE_PUBLISH_CLUSTERIP;
			else if (streq(optarg, "nodeport"))
				o.publish = KUBE_PUBLISH_NODEPORT;
			else if (streq(optarg, "loadbalancer"))
				o.publish = KUBE_PUBLISH_LOADBALANCER;
			else if (streq(optarg, "hostport"))
				o.publish = KUBE_PUBLISH_HOSTPORT;
			else {
				fprintf(stderr,
					"orch kube generate: --publish takes "
					"clusterip, nodeport, loadbalancer or "
					"hostport, not \"%s\"\n",
					optarg);
				return 2;
			}
			break;
		default:
			return cli_usage("kube", kube_usage_text);
		}
	}
	if (output && !*output)
		return cli_usage("kube", kube_usage_text);
	_cleanup_project_ struct project *m = NULL;
	if (cli_load(&m, false) < 0)
		return 1;
	_cleanup_strv_ char **services = cli_service_args(m, argc, argv, optind);
	if (!services)
		return 1;
	o.services = services;
	/* The images the project's containers run, when it is up. */
	json_t *running = json_object();
	struct pstate ps;
	struct orch_err e = {0};
	if (pstate_open(m->name, false, &ps, &e) == 0) {
		size_t i;
		json_t *c;
		json_array_foreach(state_containers(&ps), i, c)
		{
			const char *svc = json_string_value(
			    json_object_get(c, "service"));
			json_t *img = json_object_get(c, "image_id");
			if (svc && json_is_string(img) &&
			    !json_object_get(running, svc))
				json_object_set(running, svc, img);
		}
		pstate_close(&ps);
	}
	o.pin_arg = running;
	struct orch_diag d = {0};
	struct kube_doc *docs = NULL;
	size_t n = 0;
	int r = kube_generate(m, &o, &docs, &n, &d);
	json_decref(running);
	diag_print(&d, stderr);
	diag_free(&d);
	if (r < 0)
		return 1;
	int rc = write_docs(output, docs, n);
	kube_docs_free(docs, n);
	return rc;
}

int cmd_kube(int argc, char **argv)
{
	if (argc < 2 || streq(argv[1], "-h") || streq(argv[1], "--help")) {
		if (argc < 2)
			return cli_usage("kube", kube_usage_text);
		kube_help();
		return 0;
	}
	if (streq(argv[1], "generate"))
		return kube_generate_cmd(argc - 1, argv + 1);
	fprintf(stderr, "orch kube: unknown command \"%s\"\n", argv[1]);
	return cli_usage("kube", kube_usage_text);
}
