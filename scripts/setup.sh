#!/usr/bin/env bash
# Install what cti needs on Debian 12, only what is missing: apt packages,
# a virtualenv in .venv with the package (editable, with test extras), prompts.
set -euo pipefail
cd "$(dirname "$0")/.."

# kamailio-sqlite-modules: db_sqlite, where the edge keeps the registrations (usrloc)
# kamailio-tls-modules: tls.so, SIP over TLS for phones (sip.tls)
# kamailio-websocket-modules: SIP over WebSocket for the browser phone in /agent
# rtpengine-daemon: relays the browser's DTLS-SRTP media to the workers' plain RTP
# openssl: the self-signed certificate of the wss listener when none is configured
# chromium: Debian's browser for the /agent and /wallboard tests (Playwright drives it)
APT_PACKAGES=(kamailio kamailio-sqlite-modules kamailio-tls-modules kamailio-websocket-modules rtpengine-daemon espeak-ng sox baresip-core sip-tester python3-venv chromium openssl)
PYTHON=${PYTHON:-python3}

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing apt packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv with $($PYTHON --version)"
  $PYTHON -m venv .venv
fi
stamp=.venv/.cti-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "setup: installing the cti package and its dependencies into .venv"
  .venv/bin/python -m pip install -q --upgrade pip >/dev/null
  .venv/bin/python -m pip install -q -e '.[test]'
  touch "$stamp"
fi
# The example third-party plugin (docs/plugins.md), installed like any other: its
# entry point (cti.plugins: hello) is what the unit tests load it by.
hello=examples/cti-plugin-hello
hello_stamp=.venv/.cti-hello-installed
if [ ! -f "$hello_stamp" ] || [ "$hello/pyproject.toml" -nt "$hello_stamp" ] \
    || ! .venv/bin/python -c "import importlib.metadata as m; m.distribution('cti-plugin-hello')" \
      2>/dev/null; then
  echo "setup: installing the example plugin $hello into .venv"
  .venv/bin/python -m pip install -q -e "$hello" --no-deps
  touch "$hello_stamp"
fi

.venv/bin/cti prompts build --installed --config "${CTI_CONFIG:-config/cti.yaml}"

# The browser phone's SIP library (JsSIP, pinned in cti/web/package-lock.json):
# npm ci, then one esbuild bundle the app serves as /web/jssip.min.js. JsSIP ships
# CommonJS only; bundling here means no build step when the gateway runs.
web=cti/web
bundle=$web/vendor/jssip.min.js
if [ ! -f "$bundle" ] || [ "$web/package-lock.json" -nt "$bundle" ]; then
  echo "setup: installing JsSIP (npm ci) and bundling $bundle"
  (cd "$web" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
  mkdir -p "$web/vendor"
  "$web/node_modules/.bin/esbuild" "$web/node_modules/jssip/lib/JsSIP.js" --bundle \
    --format=iife --global-name=JsSIP --minify --target=es2019 --legal-comments=eof \
    --log-level=warning --outfile="$bundle"
fi
