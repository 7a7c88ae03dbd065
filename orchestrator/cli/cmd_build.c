/* `orch image build` and `orch build`. */
#include "orchestrator/build/build.h"
#include "orchestrator/cli/cli.h"
#include "runtime/runtime.h"

#include <arpa/inet.h>
#include <getopt.h>
#include <sys/stat.h>

/* "K=V", or "K" taking V from the environment (skipped when unset). */
static void push_build_arg(char ***args, const char *a)
{
	if (strchr(a, '=')) {
		strv_push(args, a);
		return;
	}
	const char *v = getenv(a);
	if (v) {
		char *kv = xasprintf("%s=%s", a, v);
		strv_push(args, kv);
		free(kv);
	}
}

static int image_build_usage(FILE *f, int rc)
{
	fprintf(f, "Usage: orch image build [OPTIONS] CONTEXT\n\n"
		   "Build an image from a Containerfile (or Dockerfile).\n\n"
		   "Options:\n"
		   "  -t, --tag NAME[:TAG]   name the image (repeatable)\n"
		   "  -f, --file FILE        Containerfile (default: "
		   "CONTEXT/Containerfile, CONTEXT/Dockerfile)\n"
		   "      --build-arg K=V    set a build argument\n"
		   "      --label k=v        add a label to the image\n"
		   "      --target STAGE     build up to this stage\n"
		   "      --no-cache         run every step again\n"
		   "      --pull             pull the images the file names "
		   "again, even when stored\n"
		   "      --network MODE     RUN steps' network: default "
		   "(the build network) or none\n"
		   "      --secret id=ID,src=FILE  a secret for RUN "
		   "--mount=type=secret\n"
		   "      --build-context NAME=DIR|docker-image://REF\n"
		   "                         a named context (COPY --from, "
		   "RUN --mount from=, FROM)\n"
		   "      --add-host NAME:IP RUN steps' /etc/hosts "
		   "(IP host-gateway: the host)\n"
		   "      --ulimit NAME=SOFT[:HARD]  RUN steps' limits\n"
		   "      --ssh default|ID=SOCKET  an SSH agent for RUN "
		   "--mount=type=ssh\n"
		   "  -q, --quiet            print only the image id\n");
	return rc;
}

/* --secret id=ID,src=FILE (or source=FILE), as docker buildx takes it. */
static int secret_arg(const char *arg, char ***out)
{
	_cleanup_free_ char *copy = xstrdup(arg);
	const char *id = NULL, *src = NULL;
	char *save = NULL;
	for (char *kv = strtok_r(copy, ",", &save); kv;
	     kv = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(kv, '=');
		if (eq)
			*eq++ = 0;
		if (eq && streq(kv, "id"))
			id = eq;
		else if (eq && (streq(kv, "src") || streq(kv, "source")))
			src = eq;
		else
			goto bad;
	}
	if (id && *id && src && *src) {
		_cleanup_free_ char *one = xasprintf("%s=%s", id, src);
		strv_push(out, one);
		return 0;
	}
bad:
	fprintf(stderr,
		"orch image build: --secret %s: want id=ID,src=FILE\n", arg);
	return -1;
}

int cmd_image_build(int argc, char **argv)
{
	enum {
		OPT_BUILD_ARG = 0x100,
		OPT_TARGET,
		OPT_NO_CACHE,
		OPT_LABEL,
		OPT_NETWORK,
		OPT_SECRET,
		OPT_PULL,
		OPT_CONTEXT,
		OPT_ADD_HOST,
		OPT_ULIMIT,
		OPT_SSH,
	};
	static const struct option lopts[] = {
	    {"tag", required_argument, NULL, 't'},
	    {"file", required_argument, NULL, 'f'},
	    {"quiet", no_argument, NULL, 'q'},
	    {"build-arg", required_argument, NULL, OPT_BUILD_ARG},
	    {"label", required_argument, NULL, OPT_LABEL},
	    {"target", required_argument, NULL, OPT_TARGET},
	    {"no-cache", no_argument, NULL, OPT_NO_CACHE},
	    {"network", required_argument, NULL, OPT_NETWORK},
	    {"secret", required_argument, NULL, OPT_SECRET},
	    {"pull", no_argument, NULL, OPT_PULL},
	    {"build-context", required_argument, NULL, OPT_CONTEXT},
	    {"add-host", required_argument, NULL, OPT_ADD_HOST},
	    {"ulimit", required_argument, NULL, OPT_ULIMIT},
	    {"ssh", required_argument, NULL, OPT_SSH},
	    {"help", no_argument, NULL, 'h'},
	    {0},
	};
	_cleanup_strv_ char **tags = NULL, **args = NULL, **labels = NULL;
	_cleanup_strv_ char **secrets = xcalloc(1, sizeof(char *));
	_cleanup_strv_ char **contexts = xcalloc(1, sizeof(char *));
	_cleanup_strv_ char **hosts = xcalloc(1, sizeof(char *));
	_cleanup_strv_ char **ulimits = xcalloc(1, sizeof(char *));
	_cleanup_strv_ char **ssh = xcalloc(1, sizeof(char *));
	struct build_opts o = {0};
	bool quiet = false;
	int opt;
	optind = 1;
	while ((opt = getopt_long(argc, argv, "t:f:qh", lopts, NULL)) != -1) {
		switch (opt) {
		case 't':
			strv_push(&tags, optarg);
			break;
		case 'f':
			o.file = optarg;
			break;
		case 'q':
			quiet = true;
			break;
		case OPT_BUILD_ARG:
			push_build_arg(&args, optarg);
			break;
		case OPT_LABEL:
			strv_push(&labels, optarg);
			break;
		case OPT_TARGET:
			o.target = optarg;
			break;
		case OPT_NO_CACHE:
			o.no_cache = true;
			break;
		case OPT_PULL:
			o.pull = true;
			break;
		case OPT_NETWORK:
			if (!streq(optarg, "none") &&
			    !streq(optarg, "default")) {
				fprintf(stderr,
					"orch image build: --network "
					"%s: use default or none\n",
					optarg);
				return 2;
			}
			o.network = optarg;
			break;
		case OPT_SECRET:
			if (secret_arg(optarg, &secrets) < 0)
				return 2;
			break;
		case OPT_CONTEXT: {
			/* A directory as an absolute path, as compose's. */
			const char *eq = strchr(optarg, '=');
			if (!eq || eq == optarg || !eq[1]) {
				fprintf(stderr, "orch image build: "
						"--build-context %s: want "
						"NAME=DIR or "
						"NAME=docker-image://REF\n",
					optarg);
				return 2;
			}
			char abs[PATH_MAX];
			bool url = strstr(eq, "://") != NULL;
			if (!url && !realpath(eq + 1, abs)) {
				fprintf(stderr, "orch image build: "
						"--build-context %s: %s\n",
					optarg, strerror(errno));
				return 1;
			}
			_cleanup_free_ char *one =
			    url ? xstrdup(optarg)
				: xasprintf("%.*s=%s", (int)(eq - optarg),
					    optarg, abs);
			strv_push(&contexts, one);
			break;
		}
		case OPT_ADD_HOST: {
			size_t k = strcspn(optarg, "=:");
			const char *ip = optarg[k] ? optarg + k + 1 : "";
			struct in6_addr a;
			if (!k || (inet_pton(AF_INET, ip, &a) != 1 &&
				   inet_pton(AF_INET6, ip, &a) != 1 &&
				   !streq(ip, "host-gateway"))) {
				fprintf(stderr, "orch image build: --add-host "
						"%s: want NAME:IP (IP an "
						"address or host-gateway)\n",
					optarg);
				return 2;
			}
			strv_push(&hosts, optarg);
			break;
		}
		case OPT_ULIMIT: {
			const char *why;
			int res;
			int64_t soft, hard;
			if (!ulimit_parse(optarg, &res, &soft, &hard, &why)) {
				fprintf(stderr,
					"orch image build: --ulimit %s: %s\n",
					optarg, why);
				return 2;
			}
			strv_push(&ulimits, optarg);
			break;
		}
		case OPT_SSH: {
			struct orch_err se = {0};
			if (build_ssh_arg(optarg, &ssh, &se) < 0) {
				fprintf(stderr, "orch image build: --ssh %s\n",
					se.msg);
				return 2;
			}
			break;
		}
		case 'h':
			return image_build_usage(stdout, 0);
		default:
			return image_build_usage(stderr, 2);
		}
	}
	if (optind != argc - 1)
		return image_build_usage(stderr, 2);
	o.context = argv[optind];
	o.build_args = args;
	o.labels = labels;
	o.secrets = secrets;
	o.contexts = contexts;
	o.extra_hosts = hosts;
	o.ulimits = ulimits;
	o.ssh = ssh;
	o.tag = tags ? tags[0] : NULL;
	_cleanup_fclose_ FILE *devnull = NULL;
	if (quiet) {
		devnull = fopen("/dev/null", "we");
		o.log = devnull;
	}
	struct build_result res;
	struct orch_err e = {0};
	if (build_image(&o, &res, &e) < 0) {
		log_error("building %s: %s", o.context, e.msg);
		return 1;
	}
	for (size_t i = 1; tags && tags[i]; i++) {
		if (rt_image_tag(res.id, tags[i], &e) < 0) {
			log_error("%s", e.msg);
			return 1;
		}
	}
	if (!quiet)
		build_result_print(stderr, &res, o.tag);
	printf("%s\n", res.id);
	return 0;
}

/* ---- orch build -------------------------------------------------------------
 */

static int build_usage(FILE *f, int rc)
{
	fprintf(f, "Usage: orch [-f FILE] [-p NAME] build [OPTIONS] "
		   "[SERVICE...]\n\n"
		   "Build or rebuild the images of services with a build: "
		   "section.\n\n"
		   "Options:\n"
		   "      --build-arg K=V   set a build argument for every "
		   "service\n"
		   "      --no-cache        run every step again\n"
		   "      --pull            pull the images the files name "
		   "again, even when stored\n"
		   "      --push            push the services' images once "
		   "built\n"
		   "      --with-dependencies  build the services they "
		   "depend on too\n"
		   "      --ssh default|ID=SOCKET  an SSH agent for RUN "
		   "--mount=type=ssh, over build.ssh\n"
		   "  -q, --quiet           print nothing but errors\n");
	return rc;
}

int cmd_build(int argc, char **argv)
{
	enum {
		OPT_BUILD_ARG = CLI_OPT_LOCAL,
		OPT_NO_CACHE,
		OPT_PULL,
		OPT_PUSH,
		OPT_DEPS,
		OPT_SVC_SSH
	};
	static const struct option lopts[] = {
	    CLI_GLOBAL_LONGOPTS,
	    {"build-arg", required_argument, NULL, OPT_BUILD_ARG},
	    {"no-cache", no_argument, NULL, OPT_NO_CACHE},
	    {"pull", no_argument, NULL, OPT_PULL},
	    {"push", no_argument, NULL, OPT_PUSH},
	    {"with-dependencies", no_argument, NULL, OPT_DEPS},
	    {"ssh", required_argument, NULL, OPT_SVC_SSH},
	    {"quiet", no_argument, NULL, 'q'},
	    {"help", no_argument, NULL, 'h'},
	    {0},
	};
	_cleanup_strv_ char **args = NULL;
	_cleanup_strv_ char **ssh = NULL;
	struct svc_build_opts bo = {0};
	bool push = false, deps = false;
	int opt;
	optind = 1;
	while ((opt = getopt_long(argc, argv, CLI_GLOBAL_SHORTOPTS "qh", lopts,
				  NULL)) != -1) {
		int g = cli_global_opt(opt, optarg);
		if (g < 0)
			return 2;
		if (g)
			continue;
		switch (opt) {
		case OPT_BUILD_ARG:
			push_build_arg(&args, optarg);
			break;
		case OPT_NO_CACHE:
			bo.no_cache = true;
			break;
		case OPT_PULL:
			bo.pull = true;
			break;
		case 'q':
			bo.quiet = true;
			break;
		case OPT_PUSH:
			push = true;
			break;
		case OPT_DEPS:
			deps = true;
			break;
		case OPT_SVC_SSH: {
			struct orch_err se = {0};
			if (build_ssh_arg(optarg, &ssh, &se) < 0) {
				fprintf(stderr, "orch build: --ssh %s\n",
					se.msg);
				return 2;
			}
			break;
		}
		case 'h':
			return build_usage(stdout, 0);
		default:
			return build_usage(stderr, 2);
		}
	}
	struct project *p = NULL;
	if (cli_load(&p, false) < 0)
		return 1;
	struct orch_err e = {0};
	bo.extra_args = args;
	bo.ssh = ssh;
	_cleanup_strv_ char **named = cli_service_args(p, argc, argv, optind);
	if (!named) {
		project_free(p);
		return 1;
	}
	_cleanup_strv_ char **with = deps && named[0]
					 ? services_with_deps(p, named)
					 : NULL;
	int r = build_service_images(p, with ? with : named, &bo, &e);
	int failed = r == 0 && push && push_service_images(p, named, deps,
							   false, bo.quiet);
	project_free(p);
	if (r < 0)
		return cli_fail(&e);
	return failed ? 1 : 0;
}
