#!/usr/bin/env bash
# Headless Chromium and its driver for the page tests (tests/service/test_app_page.py), from Debian's
# packages: selenium then finds nothing to download. Without them those tests skip with a message, so a
# failed install here is reported and does not stop CI.
set -uo pipefail
if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "setup_browser: chromium is missing; as root: apt-get install -y chromium chromium-driver" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
if ! { apt-get update -qq && apt-get install -y -qq chromium chromium-driver >/dev/null; }; then
  echo "setup_browser: could not install chromium; the browser tests will be skipped" >&2
fi
exit 0
