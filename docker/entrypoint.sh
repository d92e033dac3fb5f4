#!/usr/bin/env bash
# Container entry point: make sure the SoftHSM2 token exists, then run sigillo.
#
#   SOFTHSM2_CONF              SoftHSM2 config file (written here if missing)
#   SIGILLO_HSM_TOKEN_DIR      token directory, a volume (default /var/lib/sigillo/tokens)
#   SIGILLO__HSM__TOKEN_LABEL  token label (default sigillo)
#   SIGILLO__HSM__PIN          user PIN (the gateway logs in with it)
#   SIGILLO_HSM_SO_PIN         security officer PIN, needed only to create the token
#
# Arguments are sigillo's (default: serve); any other command is run as is.
set -euo pipefail

lib=/usr/local/lib/sigillo
export SOFTHSM2_CONF=${SOFTHSM2_CONF:-/var/lib/sigillo/softhsm2.conf}
tokendir=${SIGILLO_HSM_TOKEN_DIR:-/var/lib/sigillo/tokens}
label=${SIGILLO__HSM__TOKEN_LABEL:-sigillo}

if [[ ! -f $SOFTHSM2_CONF ]]; then
	conf="$(<"${lib}/softhsm2.conf.template")"
	printf '%s\n' "${conf//@TOKENDIR@/${tokendir}}" >"$SOFTHSM2_CONF"
fi

if [[ -n ${SIGILLO__HSM__PIN:-} && -n ${SIGILLO_HSM_SO_PIN:-} ]]; then
	"${lib}/init-token" "$label" "$SIGILLO_HSM_SO_PIN" "$SIGILLO__HSM__PIN"
elif ! softhsm2-util --show-slots 2>/dev/null | grep -Eq "^[[:space:]]*Label:[[:space:]]*${label}[[:space:]]*$"; then
	echo "sigillo-entrypoint: no token '${label}' in ${tokendir}; set SIGILLO__HSM__PIN and SIGILLO_HSM_SO_PIN to create it" >&2
	exit 1
fi

case "${1:-serve}" in
serve | migrate | admin | audit | help | -*)
	exec /usr/local/bin/sigillo "$@"
	;;
*)
	exec "$@"
	;;
esac
