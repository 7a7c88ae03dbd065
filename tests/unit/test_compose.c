/* Unit tests for the compose loader: each supported feature, loaded from
 * text and checked in the typed model. */
#include "tests/unit/compose_test.h"

#include <fcntl.h>
#include <sys/stat.h>

static void test_basic_service(void **state)
{
	(void)state;
	struct project *p = load_ok(
	    "services:\n"
	    "  web:\n"
	    "    image: nginx:${TAG}\n"
	    "    command: nginx -g 'daemon off;'\n"
	    "    entrypoint: [\"/bin/sh\", \"-c\"]\n"
	    "    user: 1000\n"
	    "    working_dir: /app\n"
	    "    init: true\n"
	    "    privileged: yes\n"
	    "    read_only: true\n"
	    "    tty: true\n"
	    "    stdin_open: true\n"
	    "    hostname: h\n"
	    "    domainname: example.org\n"
	    "    stop_signal: SIGINT\n"
	    "    stop_grace_period: 1m30s\n"
	    "    cap_add: [NET_ADMIN]\n"
	    "    cap_drop: [ALL]\n"
	    "    security_opt: [no-new-privileges:true]\n"
	    "    container_name: my-web\n"
	    "    pid: host\n"
	    "    ipc: shareable\n"
	    "    shm_size: 64m\n"
	    "    dns: 8.8.8.8\n"
	    "    tmpfs: /run\n"
	    "    extra_hosts: [\"db:10.0.0.2\", \"h2=10.0.0.3\"]\n"
	    "    sysctls: {net.core.somaxconn: 1024}\n"
	    "    labels: [a=b, c]\n"
	    "    logging: {driver: json-file, options: {max-size: 10m}}\n"
	    "    x-custom: ignored\n");
	assert_string_equal(p->name, "proj");
	assert_string_equal(p->working_dir, "/nonexistent/proj");
	assert_int_equal(p->n_services, 1);
	struct service *s = &p->services[0];
	assert_string_equal(s->name, "web");
	assert_int_equal(s->pos.line, 2);
	assert_int_equal(s->pos.col, 3);
	assert_string_equal(s->image, "nginx:1.2");
	assert_int_equal(service_key_pos(s, "image")->line, 3);
	assert_int_equal(service_key_pos(s, "image")->col, 5);
	assert_string_equal(service_key_pos(s, "image")->file, TEST_FILE);
	assert_int_equal(strv_len(s->command), 3);
	assert_string_equal(s->command[2], "daemon off;");
	assert_string_equal(s->entrypoint[1], "-c");
	assert_string_equal(s->user, "1000");
	assert_true(s->init && s->privileged && s->read_only && s->tty &&
		    s->stdin_open);
	assert_string_equal(s->stop_signal, "SIGINT");
	assert_int_equal(s->stop_grace_period_ns, 90LL * 1000000000);
	assert_string_equal(s->cap_add[0], "NET_ADMIN");
	assert_int_equal(s->shm_size, 64 << 20);
	assert_string_equal(s->dns[0], "8.8.8.8");
	assert_string_equal(s->tmpfs[0], "/run");
	assert_int_equal(s->extra_hosts.n, 2);
	assert_string_equal(s->extra_hosts.v[0].key, "db");
	assert_string_equal(s->extra_hosts.v[0].value, "10.0.0.2");
	assert_string_equal(s->extra_hosts.v[1].value, "10.0.0.3");
	assert_string_equal(s->sysctls.v[0].value, "1024");
	assert_string_equal(s->labels.v[1].key, "c");
	assert_string_equal(s->labels.v[1].value, "");
	assert_string_equal(s->logging.driver, "json-file");
	assert_int_equal(s->n_networks, 1);
	assert_string_equal(s->networks[0].name, "default");
	assert_int_equal(p->n_networks, 1);
	assert_string_equal(p->networks[0].name, "proj_default");
	assert_int_equal(service_replicas(s), 1);
	project_free(p);
}

static void test_ports(void **state)
{
	(void)state;
	struct project *p =
	    load_ok("services:\n"
		    "  web:\n"
		    "    image: x\n"
		    "    ports:\n"
		    "      - 80\n"
		    "      - \"8080:80\"\n"
		    "      - \"127.0.0.1:5353:53/udp\"\n"
		    "      - \"9000-9001:9000-9001\"\n"
		    "      - \"8000-8010:81\"\n"
		    "      - \"[::1]:6000:6000\"\n"
		    "      - \"127.0.0.1::7000\"\n"
		    "      - target: 443\n"
		    "        published: \"8443\"\n"
		    "        host_ip: 0.0.0.0\n"
		    "        protocol: tcp\n"
		    "        mode: host\n"
		    "    expose: [\"3000\", 4000-4001, 53/udp]\n");
	struct service *s = &p->services[0];
	assert_int_equal(s->n_ports, 9);
	assert_int_equal(s->ports[0].target, 80);
	assert_int_equal(s->ports[0].published, 0);
	assert_int_equal(s->ports[1].published, 8080);
	assert_int_equal(s->ports[1].published_end, 8080);
	assert_int_equal(s->ports[1].pos.line, 6);
	assert_int_equal(s->ports[1].pos.col, 9);
	assert_string_equal(s->ports[2].host_ip, "127.0.0.1");
	assert_int_equal(s->ports[2].protocol, M_PROTO_UDP);
	assert_int_equal(s->ports[3].target, 9000);
	assert_int_equal(s->ports[4].target, 9001);
	assert_int_equal(s->ports[4].published, 9001);
	assert_int_equal(s->ports[5].target, 81);
	assert_int_equal(s->ports[5].published, 8000);
	assert_int_equal(s->ports[5].published_end, 8010);
	assert_string_equal(s->ports[6].host_ip, "::1");
	assert_string_equal(s->ports[7].host_ip, "127.0.0.1");
	assert_int_equal(s->ports[7].published, 0);
	assert_int_equal(s->ports[8].target, 443);
	assert_int_equal(s->ports[8].published, 8443);
	assert_string_equal(s->ports[8].mode, "host");
	assert_int_equal(strv_len(s->expose), 3);
	project_free(p);
}

static void test_volumes(void **state)
{
	(void)state;
	struct project *p = load_ok("services:\n"
				    "  web:\n"
				    "    image: x\n"
				    "    volumes:\n"
				    "      - data:/data\n"
				    "      - ./html:/www:ro\n"
				    "      - ../up/x:/x:rw,z\n"
				    "      - ~/cfg:/cfg\n"
				    "      - /anon\n"
				    "      - type: tmpfs\n"
				    "        target: /tmp\n"
				    "        tmpfs: {size: 64m, mode: 1777}\n"
				    "      - type: bind\n"
				    "        source: /etc/hosts\n"
				    "        target: /etc/h\n"
				    "        read_only: true\n"
				    "        bind: {create_host_path: false, "
				    "propagation: rshared}\n"
				    "      - type: volume\n"
				    "        source: data\n"
				    "        target: /d2\n"
				    "        volume: {nocopy: true}\n"
				    "volumes:\n"
				    "  data:\n"
				    "    labels: {a: b}\n"
				    "  ext:\n"
				    "    external: true\n"
				    "  named:\n"
				    "    name: custom\n");
	struct service *s = &p->services[0];
	assert_int_equal(s->n_volumes, 8);
	assert_int_equal(s->volumes[0].type, M_MOUNT_VOLUME);
	assert_string_equal(s->volumes[0].source, "data");
	assert_int_equal(s->volumes[1].type, M_MOUNT_BIND);
	assert_string_equal(s->volumes[1].source, "/nonexistent/proj/html");
	assert_true(s->volumes[1].read_only);
	assert_true(s->volumes[1].bind_create_host_path);
	assert_string_equal(s->volumes[2].source, "/nonexistent/up/x");
	assert_string_equal(s->volumes[2].bind_selinux, "z");
	assert_false(s->volumes[2].read_only);
	assert_string_equal(s->volumes[3].source, "/home/u/cfg");
	assert_null(s->volumes[4].source);
	assert_string_equal(s->volumes[4].target, "/anon");
	assert_int_equal(s->volumes[5].type, M_MOUNT_TMPFS);
	assert_int_equal(s->volumes[5].tmpfs_size, 64 << 20);
	assert_int_equal(s->volumes[5].tmpfs_mode, 1777);
	assert_false(s->volumes[6].bind_create_host_path);
	assert_string_equal(s->volumes[6].bind_propagation, "rshared");
	assert_true(s->volumes[7].volume_nocopy);
	assert_int_equal(p->n_volumes, 3);
	assert_string_equal(project_volume(p, "data")->name, "proj_data");
	assert_string_equal(project_volume(p, "ext")->name, "ext");
	assert_true(project_volume(p, "ext")->external);
	assert_string_equal(project_volume(p, "named")->name, "custom");
	project_free(p);
}

static void test_networks(void **state)
{
	(void)state;
	struct project *p =
	    load_ok("services:\n"
		    "  a:\n"
		    "    image: x\n"
		    "    networks:\n"
		    "      front:\n"
		    "      back:\n"
		    "        aliases: [db, database]\n"
		    "        ipv4_address: 10.5.0.5\n"
		    "  b:\n"
		    "    image: x\n"
		    "    networks: [front]\n"
		    "  c:\n"
		    "    image: x\n"
		    "    network_mode: service:a\n"
		    "networks:\n"
		    "  front:\n"
		    "    driver: bridge\n"
		    "    internal: true\n"
		    "    driver_opts:\n"
		    "      com.docker.network.bridge.enable_icc: \"true\"\n"
		    "  back:\n"
		    "    ipam:\n"
		    "      config:\n"
		    "        - subnet: 10.5.0.0/16\n"
		    "          gateway: 10.5.0.1\n"
		    "    labels: [x=y]\n"
		    "    enable_ipv6: false\n"
		    "  outside:\n"
		    "    external: true\n"
		    "    name: the-outside\n");
	struct service *a = project_service(p, "a");
	assert_int_equal(a->n_networks, 2);
	assert_string_equal(a->networks[0].name, "back");
	assert_string_equal(a->networks[0].aliases[1], "database");
	assert_string_equal(a->networks[0].ipv4_address, "10.5.0.5");
	assert_string_equal(a->networks[1].name, "front");
	assert_string_equal(project_service(p, "b")->networks[0].name, "front");
	struct service *c = project_service(p, "c");
	assert_int_equal(c->n_networks, 0);
	assert_string_equal(c->network_mode, "service:a");
	assert_null(project_network(p, "default"));
	struct network *front = project_network(p, "front");
	assert_true(front->internal);
	assert_string_equal(front->name, "proj_front");
	assert_string_equal(front->driver_opts.v[0].value, "true");
	struct network *back = project_network(p, "back");
	assert_int_equal(back->n_ipam, 1);
	assert_string_equal(back->ipam[0].subnet, "10.5.0.0/16");
	assert_string_equal(back->ipam[0].gateway, "10.5.0.1");
	assert_string_equal(project_network(p, "outside")->name, "the-outside");
	project_free(p);
}

static void test_depends_on(void **state)
{
	(void)state;
	struct project *p =
	    load_ok("services:\n"
		    "  web:\n"
		    "    image: x\n"
		    "    depends_on:\n"
		    "      db:\n"
		    "        condition: service_healthy\n"
		    "        restart: true\n"
		    "      init:\n"
		    "        condition: service_completed_successfully\n"
		    "      cache:\n"
		    "        condition: service_started\n"
		    "        required: false\n"
		    "    links: [db:database]\n"
		    "  api:\n"
		    "    image: x\n"
		    "    depends_on: [db]\n"
		    "  db: {image: x}\n"
		    "  init: {image: x}\n"
		    "  cache: {image: x}\n");
	struct service *w = project_service(p, "web");
	assert_int_equal(w->n_depends_on, 3);
	assert_string_equal(w->depends_on[0].service, "cache");
	assert_false(w->depends_on[0].required);
	assert_string_equal(w->depends_on[1].service, "db");
	assert_int_equal(w->depends_on[1].condition, M_DEP_HEALTHY);
	assert_true(w->depends_on[1].restart);
	assert_true(w->depends_on[1].required);
	assert_int_equal(w->depends_on[1].pos.line, 5);
	assert_int_equal(w->depends_on[2].condition, M_DEP_COMPLETED);
	struct service *api = project_service(p, "api");
	assert_int_equal(api->depends_on[0].condition, M_DEP_STARTED);
	assert_true(api->depends_on[0].required);
	project_free(p);
}

static void test_healthcheck_restart_deploy(void **state)
{
	(void)state;
	struct project *p =
	    load_ok("services:\n"
		    "  a:\n"
		    "    image: x\n"
		    "    healthcheck:\n"
		    "      test: [\"CMD\", \"true\"]\n"
		    "      interval: 1m30s\n"
		    "      timeout: 500ms\n"
		    "      start_period: 1h\n"
		    "      start_interval: 2s\n"
		    "      retries: 3\n"
		    "    restart: on-failure:5\n"
		    "    deploy:\n"
		    "      replicas: 3\n"
		    "      resources:\n"
		    "        limits: {cpus: '0.5', memory: 1g, pids: 100}\n"
		    "        reservations: {memory: 256m}\n"
		    "      restart_policy: {condition: on-failure, delay: 5s, "
		    "max_attempts: 3}\n"
		    "  b:\n"
		    "    image: x\n"
		    "    healthcheck:\n"
		    "      test: curl -f http://localhost\n"
		    "    restart: \"no\"\n"
		    "    mem_limit: 512m\n"
		    "    memswap_limit: -1\n"
		    "    cpus: 1.5\n"
		    "    cpu_shares: 512\n"
		    "    pids_limit: 50\n"
		    "    scale: 2\n"
		    "    ulimits:\n"
		    "      nofile: {soft: 1024, hard: 2048}\n"
		    "      nproc: 65535\n"
		    "  c:\n"
		    "    image: x\n"
		    "    healthcheck: {disable: true}\n"
		    "    restart: unless-stopped\n"
		    "  d:\n"
		    "    image: x\n"
		    "    restart: always\n");
	struct service *a = project_service(p, "a");
	assert_true(a->healthcheck.present);
	assert_string_equal(a->healthcheck.test[0], "CMD");
	assert_int_equal(a->healthcheck.interval_ns, 90LL * 1000000000);
	assert_int_equal(a->healthcheck.timeout_ns, 500000000);
	assert_int_equal(a->healthcheck.start_period_ns, 3600LL * 1000000000);
	assert_int_equal(a->healthcheck.start_interval_ns, 2000000000);
	assert_int_equal(a->healthcheck.retries, 3);
	assert_int_equal(a->restart.policy, M_RESTART_ON_FAILURE);
	assert_int_equal(a->restart.max_retries, 5);
	assert_int_equal(service_replicas(a), 3);
	struct m_resources lim = service_limits(a);
	assert_true(lim.cpus > 0.49 && lim.cpus < 0.51);
	assert_int_equal(lim.memory, 1LL << 30);
	assert_int_equal(lim.pids, 100);
	assert_int_equal(a->deploy.reservations.memory, 256 << 20);
	assert_string_equal(a->deploy.restart_policy.condition, "on-failure");
	assert_int_equal(a->deploy.restart_policy.delay_ns, 5000000000LL);
	struct service *b = project_service(p, "b");
	assert_string_equal(b->healthcheck.test[0], "CMD-SHELL");
	assert_string_equal(b->healthcheck.test[1], "curl -f http://localhost");
	assert_int_equal(b->healthcheck.interval_ns, M_UNSET);
	assert_int_equal(b->restart.policy, M_RESTART_NO);
	assert_true(b->restart.present);
	lim = service_limits(b);
	assert_int_equal(lim.memory, 512 << 20);
	assert_true(lim.cpus > 1.49 && lim.cpus < 1.51);
	assert_int_equal(lim.pids, 50);
	assert_int_equal(b->memswap_limit, -1);
	assert_int_equal(b->cpu_shares, 512);
	assert_int_equal(service_replicas(b), 2);
	assert_int_equal(b->n_ulimits, 2);
	assert_string_equal(b->ulimits[0].name, "nofile");
	assert_int_equal(b->ulimits[0].soft, 1024);
	assert_int_equal(b->ulimits[0].hard, 2048);
	assert_int_equal(b->ulimits[1].hard, 65535);
	struct service *c = project_service(p, "c");
	assert_true(c->healthcheck.disable);
	assert_int_equal(c->restart.policy, M_RESTART_UNLESS_STOPPED);
	assert_int_equal(project_service(p, "d")->restart.policy,
			 M_RESTART_ALWAYS);
	project_free(p);
}

static void test_build_configs_secrets(void **state)
{
	(void)state;
	struct project *p = load_ok("services:\n"
				    "  a:\n"
				    "    build: ./app\n"
				    "  b:\n"
				    "    build:\n"
				    "      context: .\n"
				    "      dockerfile: Dockerfile.dev\n"
				    "      args: [VERSION=1, DEBUG]\n"
				    "      target: dev\n"
				    "    image: mine:dev\n"
				    "    configs: [cfg]\n"
				    "    secrets:\n"
				    "      - source: token\n"
				    "        target: /run/secrets/t\n"
				    "        mode: 0400\n"
				    "configs:\n"
				    "  cfg:\n"
				    "    file: ./cfg.txt\n"
				    "secrets:\n"
				    "  token:\n"
				    "    environment: TOKEN\n");
	struct service *a = project_service(p, "a");
	assert_true(a->build.present);
	assert_string_equal(a->build.context, "/nonexistent/proj/app");
	assert_null(a->image);
	struct service *b = project_service(p, "b");
	assert_string_equal(b->build.context, "/nonexistent/proj");
	assert_string_equal(b->build.dockerfile, "Dockerfile.dev");
	assert_string_equal(b->build.args.v[0].value, "1");
	assert_null(b->build.args.v[1].value);
	assert_string_equal(b->build.target, "dev");
	assert_int_equal(b->n_configs, 1);
	assert_string_equal(b->configs[0].source, "cfg");
	assert_int_equal(b->secrets[0].mode, 0400);
	assert_string_equal(p->configs[0].file, "/nonexistent/proj/cfg.txt");
	assert_string_equal(p->configs[0].name, "proj_cfg");
	assert_string_equal(p->secrets[0].environment, "TOKEN");
	project_free(p);
}

static void test_interpolation(void **state)
{
	(void)state;
	char *env[] = {"A=a", "E=", "N=7", NULL};
	const char *names[] = {TEST_FILE, NULL};
	const char *texts[] = {"services:\n"
			       "  s:\n"
			       "    image: x\n"
			       "    environment:\n"
			       "      V1: $A\n"
			       "      V2: ${A}-${A}\n"
			       "      V3: ${U:-def}\n"
			       "      V4: ${E:-def}\n"
			       "      V5: ${E-def}\n"
			       "      V6: ${U-def}\n"
			       "      V7: ${A:+alt}\n"
			       "      V8: ${E:+alt}\n"
			       "      V9: ${E+alt}\n"
			       "      V10: $$A\n"
			       "      V11: ${U:-${A}x}\n"
			       "      V12: ${A:?boom}\n"
			       "      V13: ${U}\n"
			       "      V14: \"pre${N}post\"\n"
			       "    cpus: ${N}\n",
			       NULL};
	struct orch_diag d = {0};
	struct project *p = load_files(names, texts, &d, env);
	if (!p)
		diag_print(&d, stderr);
	assert_non_null(p);
	/* The unset variable is a warning naming it. */
	assert_int_equal(d.n_errors, 0);
	bool warned = false;
	for (size_t i = 0; i < d.n; i++)
		warned |=
		    d.v[i].severity == M_WARNING && strstr(d.v[i].msg, "\"U\"");
	assert_true(warned);
	diag_free(&d);
	const struct m_kvlist *e = &p->services[0].environment;
	static const char *const want[][2] = {
	    {"V1", "a"},   {"V2", "a-a"},	{"V3", "def"}, {"V4", "def"},
	    {"V5", ""},	   {"V6", "def"},	{"V7", "alt"}, {"V8", ""},
	    {"V9", "alt"}, {"V10", "$A"},	{"V11", "ax"}, {"V12", "a"},
	    {"V13", ""},   {"V14", "pre7post"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(want); i++) {
		bool found = false;
		for (size_t j = 0; j < e->n; j++)
			if (streq(e->v[j].key, want[i][0])) {
				assert_string_equal(e->v[j].value, want[i][1]);
				found = true;
			}
		assert_true(found);
	}
	assert_true(p->services[0].cpus > 6.9);
	project_free(p);
}

static char tmpdir[64];

static void write_at(const char *name, const char *text)
{
	char *path = path_join(tmpdir, name);
	struct orch_err e = {0};
	assert_int_equal(write_file_atomic(path, text, strlen(text), 0644, &e),
			 0);
	free(path);
}

static int make_tmpdir(void **state)
{
	(void)state;
	strcpy(tmpdir, "/tmp/orch-compose-test.XXXXXX");
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int remove_tmpdir(void **state)
{
	(void)state;
	struct orch_err e = {0};
	rm_rf(tmpdir, &e);
	return 0;
}

static void test_env_files(void **state)
{
	(void)state;
	write_at(".env", "# project env\nIMG=busybox\nexport PORT=8080\n"
			 "QUOTED=\"a b\" # comment\nTAG=fromdotenv\n");
	write_at("app.env", "# comment\n"
			    "export A=1\n"
			    "B='single $IMG'\n"
			    "C=\"double ${IMG}\\nnext\"\n"
			    "D=unquoted value # comment\n"
			    "E=x#notacomment\n"
			    "F: yaml-style\n"
			    "OVER=file\n"
			    "HOME\n"
			    "EMPTY=\n");
	write_at("compose.yaml", "services:\n"
				 "  s:\n"
				 "    image: ${IMG}:${TAG}\n"
				 "    ports: [\"${PORT}:80\"]\n"
				 "    env_file: [app.env]\n"
				 "    environment:\n"
				 "      OVER: env\n"
				 "      Q: $QUOTED\n");
	char *files[2] = {path_join(tmpdir, "compose.yaml"), NULL};
	struct compose_opts o = {.files = files, .environ = test_env};
	struct orch_diag d = {0};
	struct project *p = NULL;
	int r = compose_load(&o, &p, &d);
	diag_print(&d, stderr);
	assert_int_equal(r, 0);
	struct service *s = &p->services[0];
	/* The process environment wins over .env (TAG=1.2). */
	assert_string_equal(s->image, "busybox:1.2");
	assert_int_equal(s->ports[0].published, 8080);
	static const char *const want[][2] = {
	    {"A", "1"},
	    {"B", "single $IMG"},
	    {"C", "double busybox\nnext"},
	    {"D", "unquoted value"},
	    {"E", "x#notacomment"},
	    {"F", "yaml-style"},
	    {"OVER", "env"},
	    {"HOME", "/home/u"},
	    {"EMPTY", ""},
	    {"Q", "a b"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(want); i++) {
		bool found = false;
		for (size_t j = 0; j < s->environment.n; j++)
			if (streq(s->environment.v[j].key, want[i][0])) {
				assert_string_equal(s->environment.v[j].value,
						    want[i][1]);
				found = true;
			}
		if (!found)
			fprintf(stderr, "missing %s\n", want[i][0]);
		assert_true(found);
	}
	project_free(p);
	diag_free(&d);

	/* --env-file replaces .env */
	write_at("other.env", "IMG=alpine\n");
	char *envf[2] = {path_join(tmpdir, "other.env"), NULL};
	o.env_files = envf;
	assert_int_equal(compose_load(&o, &p, &d), 0);
	assert_string_equal(p->services[0].image, "alpine:1.2");
	project_free(p);
	diag_free(&d);
	free(envf[0]);
	free(files[0]);
}

static void test_discovery_and_override(void **state)
{
	(void)state;
	char sub[128];
	snprintf(sub, sizeof(sub), "%s/sub", tmpdir);
	mkdir(sub, 0755);
	write_at("compose.yaml", "services:\n  s:\n    image: base\n"
				 "    environment: [A=1]\n");
	write_at("compose.override.yaml", "services:\n  s:\n    image: over\n");
	char cwd[4096];
	assert_non_null(getcwd(cwd, sizeof(cwd)));
	assert_int_equal(chdir(sub), 0);
	struct compose_opts o = {.environ = test_env};
	struct orch_diag d = {0};
	struct project *p = NULL;
	int r = compose_load(&o, &p, &d);
	assert_int_equal(chdir(cwd), 0);
	diag_print(&d, stderr);
	assert_int_equal(r, 0);
	assert_int_equal(strv_len(p->files), 2);
	assert_string_equal(p->services[0].image, "over");
	assert_string_equal(p->services[0].environment.v[0].value, "1");
	assert_string_equal(p->working_dir, tmpdir);
	project_free(p);
	diag_free(&d);
}

static void test_stdin(void **state)
{
	(void)state;
	int fds[2];
	assert_int_equal(pipe2(fds, O_CLOEXEC), 0);
	const char *y = "name: fromstdin\nservices:\n  s: {image: x}\n";
	assert_int_equal(write(fds[1], y, strlen(y)), (ssize_t)strlen(y));
	close(fds[1]);
	char *files[] = {"-", NULL};
	struct compose_opts o = {
	    .files = files, .stdin_fd = fds[0], .environ = test_env};
	struct orch_diag d = {0};
	struct project *p = NULL;
	assert_int_equal(compose_load(&o, &p, &d), 0);
	close(fds[0]);
	assert_string_equal(p->name, "fromstdin");
	assert_string_equal(p->files[0], "-");
	assert_string_equal(p->services[0].pos.file, "-");
	project_free(p);
	diag_free(&d);
}

static void test_merge(void **state)
{
	(void)state;
	const char *names[] = {"/nonexistent/proj/a.yaml",
			       "/nonexistent/proj/b.yaml", NULL};
	const char *texts[] = {
	    "services:\n"
	    "  web:\n"
	    "    image: a\n"
	    "    command: [a, b]\n"
	    "    ports: [\"8080:80\", \"9090:90\"]\n"
	    "    environment: [A=1, B=2]\n"
	    "    labels: {l1: x}\n"
	    "    volumes: [\"./a:/data\", \"/keep\"]\n"
	    "    dns: [1.1.1.1]\n"
	    "    healthcheck: {test: [CMD, a], interval: 10s}\n"
	    "    cap_add: [NET_ADMIN]\n"
	    "    build: ./dir\n"
	    "  gone: {image: g}\n"
	    "networks:\n"
	    "  n1: {internal: true}\n",
	    "services:\n"
	    "  web:\n"
	    "    image: b\n"
	    "    command: [c]\n"
	    "    ports:\n"
	    "      - target: 80\n"
	    "        published: \"8080\"\n"
	    "        name: http\n"
	    "      - \"7070:70\"\n"
	    "    environment: {B: 3, C: 4}\n"
	    "    labels: [l2=y]\n"
	    "    volumes: [\"./b:/data:ro\"]\n"
	    "    dns: [1.1.1.1, 8.8.8.8]\n"
	    "    healthcheck: {test: [CMD, b]}\n"
	    "    cap_add: !reset []\n"
	    "    build: {dockerfile: D}\n"
	    "  gone: !reset {}\n"
	    "networks:\n"
	    "  n1: {labels: {k: v}}\n",
	    NULL};
	struct orch_diag d = {0};
	struct project *p = load_files(names, texts, &d, NULL);
	diag_print(&d, stderr);
	assert_non_null(p);
	assert_int_equal(p->n_services, 1);
	struct service *s = &p->services[0];
	assert_string_equal(s->image, "b");
	assert_int_equal(s->pos.line, 2);
	assert_int_equal(strv_len(s->command), 1);
	assert_string_equal(service_key_pos(s, "image")->file,
			    "/nonexistent/proj/b.yaml");
	/* 8080:80 and its long form are one port; 7070 is appended. */
	assert_int_equal(s->n_ports, 3);
	assert_string_equal(s->ports[0].name, "http");
	assert_string_equal(s->ports[0].pos.file, "/nonexistent/proj/b.yaml");
	assert_int_equal(s->ports[1].published, 9090);
	assert_int_equal(s->ports[2].published, 7070);
	assert_int_equal(s->environment.n, 3);
	assert_string_equal(kv_get_value(&s->environment, "A"), "1");
	assert_string_equal(kv_get_value(&s->environment, "B"), "3");
	assert_string_equal(kv_get_value(&s->environment, "C"), "4");
	assert_int_equal(s->labels.n, 2);
	assert_int_equal(s->n_volumes, 2);
	assert_string_equal(s->volumes[0].source, "/nonexistent/proj/b");
	assert_true(s->volumes[0].read_only);
	assert_int_equal(strv_len(s->dns), 2);
	assert_string_equal(s->healthcheck.test[1], "b");
	assert_int_equal(s->healthcheck.interval_ns, 10000000000LL);
	assert_null(s->cap_add);
	assert_string_equal(s->build.context, "/nonexistent/proj/dir");
	assert_string_equal(s->build.dockerfile, "D");
	struct network *n1 = project_network(p, "n1");
	assert_true(n1->internal);
	assert_int_equal(n1->labels.n, 1);
	project_free(p);
	diag_free(&d);
}

static void test_anchors(void **state)
{
	(void)state;
	struct project *p = load_ok("x-base: &base\n"
				    "  image: common\n"
				    "  restart: always\n"
				    "  environment: &env\n"
				    "    A: 1\n"
				    "x-more: &more\n"
				    "  labels: {m: n}\n"
				    "services:\n"
				    "  a:\n"
				    "    <<: *base\n"
				    "  b:\n"
				    "    <<: [*base, *more]\n"
				    "    image: own\n"
				    "    environment: *env\n");
	struct service *a = project_service(p, "a");
	struct service *b = project_service(p, "b");
	assert_string_equal(a->image, "common");
	assert_int_equal(a->restart.policy, M_RESTART_ALWAYS);
	assert_string_equal(b->image, "own");
	assert_int_equal(b->labels.n, 1);
	assert_string_equal(b->environment.v[0].value, "1");
	project_free(p);
}

static void test_profiles(void **state)
{
	(void)state;
	const char *y = "services:\n"
			"  web: {image: x}\n"
			"  debug: {image: x, profiles: [debug]}\n"
			"  tools: {image: x, profiles: [tools, debug]}\n";
	const char *names[] = {TEST_FILE, NULL};
	const char *texts[] = {y, NULL};
	struct orch_diag d = {0};
	struct project *p = load_files(names, texts, &d, NULL);
	assert_int_equal(p->n_services, 1);
	assert_int_equal(p->n_disabled, 2);
	project_free(p);
	char *profiles[] = {"tools", NULL};
	struct compose_opts o = {.files = (char **)names,
				 .contents = texts,
				 .environ = test_env,
				 .profiles = profiles};
	assert_int_equal(compose_load(&o, &p, &d), 0);
	assert_int_equal(p->n_services, 2);
	assert_non_null(project_service(p, "tools"));
	project_free(p);
	char *env[] = {"COMPOSE_PROFILES=debug", NULL};
	p = load_files(names, texts, &d, env);
	assert_int_equal(p->n_services, 3);
	project_free(p);
	o.profiles = NULL;
	o.all_profiles = true;
	assert_int_equal(compose_load(&o, &p, &d), 0);
	assert_int_equal(p->n_services, 3);
	project_free(p);
	diag_free(&d);
}

static void test_project_name(void **state)
{
	(void)state;
	char *n = project_name_normalize("My_App-1.0!");
	assert_string_equal(n, "my_app-10");
	free(n);
	n = project_name_normalize("__x");
	assert_string_equal(n, "x");
	free(n);
	assert_null(project_name_normalize("..."));

	const char *names[] = {"/nonexistent/Some Dir/compose.yaml", NULL};
	const char *texts[] = {"services: {s: {image: x}}\n", NULL};
	struct orch_diag d = {0};
	struct project *p = load_files(names, texts, &d, NULL);
	assert_string_equal(p->name, "somedir");
	project_free(p);
	const char *named[] = {"name: fromfile\nservices: {s: {image: x}}\n",
			       NULL};
	p = load_files(names, named, &d, NULL);
	assert_string_equal(p->name, "fromfile");
	assert_string_equal(p->networks[0].name, "fromfile_default");
	project_free(p);
	char *env[] = {"COMPOSE_PROJECT_NAME=fromenv", NULL};
	p = load_files(names, named, &d, env);
	assert_string_equal(p->name, "fromenv");
	project_free(p);
	struct compose_opts o = {.files = (char **)names,
				 .contents = named,
				 .environ = env,
				 .project_name = "fromflag"};
	assert_int_equal(compose_load(&o, &p, &d), 0);
	assert_string_equal(p->name, "fromflag");
	project_free(p);
	o.project_name = "Bad Name";
	assert_true(compose_load(&o, &p, &d) < 0);
	assert_non_null(strstr(d.v[d.n - 1].msg, "invalid project name"));
	diag_free(&d);
}

static void test_durations(void **state)
{
	(void)state;
	static const struct {
		const char *in;
		int64_t ns;
		const char *out;
	} cases[] = {
	    {"1m30s", 90000000000LL, "1m30s"},
	    {"90s", 90000000000LL, "1m30s"},
	    {"1h", 3600000000000LL, "1h0m0s"},
	    {"500ms", 500000000, "500ms"},
	    {"1.5s", 1500000000, "1.5s"},
	    {"0", 0, "0s"},
	    {"2h45m", 9900000000000LL, "2h45m0s"},
	    {"10us", 10000, "10\xc2\xb5s"},
	    {"3ns", 3, "3ns"},
	    {"1.5ms", 1500000, "1.5ms"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		int64_t ns;
		assert_int_equal(duration_parse(cases[i].in, &ns), 0);
		assert_int_equal(ns, cases[i].ns);
		char *s = duration_format(ns);
		assert_string_equal(s, cases[i].out);
		free(s);
	}
	int64_t ns;
	assert_true(duration_parse("10", &ns) < 0);
	assert_true(duration_parse("5 minutes", &ns) < 0);
	assert_true(duration_parse("", &ns) < 0);
	assert_true(duration_parse("-1s", &ns) < 0);
	assert_true(duration_parse("99999999999h", &ns) < 0);
}

static void test_version_warning(void **state)
{
	(void)state;
	struct orch_diag d = {0};
	struct project *p =
	    load_text("version: \"3.8\"\nservices:\n  a: {image: x}\n", &d);
	assert_non_null(p);
	assert_int_equal(d.n_errors, 0);
	assert_int_equal(d.n, 1);
	assert_int_equal(d.v[0].severity, M_WARNING);
	assert_int_equal(d.v[0].line, 1);
	assert_non_null(strstr(d.v[0].msg, "obsolete"));
	project_free(p);
	diag_free(&d);
}

static void test_render(void **state)
{
	(void)state;
	struct project *p =
	    load_ok("services:\n"
		    "  web:\n"
		    "    image: nginx\n"
		    "    ports: [\"8080:80\"]\n"
		    "    environment: [\"YES=no\", \"N=1\"]\n"
		    "    healthcheck: {test: \"true\", interval: 90s}\n"
		    "    depends_on: [db]\n"
		    "  db: {image: pg}\n");
	char *json = project_render(p, COMPOSE_JSON);
	assert_non_null(strstr(json, "\"published\": \"8080\""));
	assert_non_null(strstr(json, "\"interval\": \"1m30s\""));
	assert_non_null(strstr(json, "\"condition\": \"service_started\""));
	free(json);
	char *yaml = project_render(p, COMPOSE_YAML);
	assert_non_null(strstr(yaml, "name: proj\n"));
	assert_non_null(
	    strstr(yaml, "      - mode: ingress\n        target: 80\n"));
	assert_non_null(strstr(yaml, "published: \"8080\""));
	assert_non_null(strstr(yaml, "\"YES\": \"no\""));
	assert_non_null(strstr(yaml, "\"N\": \"1\""));
	free(yaml);
	project_free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_basic_service),
	    cmocka_unit_test(test_ports),
	    cmocka_unit_test(test_volumes),
	    cmocka_unit_test(test_networks),
	    cmocka_unit_test(test_depends_on),
	    cmocka_unit_test(test_healthcheck_restart_deploy),
	    cmocka_unit_test(test_build_configs_secrets),
	    cmocka_unit_test(test_interpolation),
	    cmocka_unit_test_setup_teardown(test_env_files, make_tmpdir,
					    remove_tmpdir),
	    cmocka_unit_test_setup_teardown(test_discovery_and_override,
					    make_tmpdir, remove_tmpdir),
	    cmocka_unit_test(test_stdin),
	    cmocka_unit_test(test_merge),
	    cmocka_unit_test(test_anchors),
	    cmocka_unit_test(test_profiles),
	    cmocka_unit_test(test_project_name),
	    cmocka_unit_test(test_durations),
	    cmocka_unit_test(test_version_warning),
	    cmocka_unit_test(test_render),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
