#!/bin/sh
# How the official redis image starts a server: options alone mean redis-server, and without a
# configuration file that sets protected-mode the server turns it off, so that other pods (not
# only its own loopback) may connect.
set -e
case "$1" in
    -*) set -- redis-server "$@" ;;
esac
if [ "$1" = redis-server ]; then
    case "$2" in
        *.conf) grep -q '^protected-mode' "$2" 2>/dev/null || set -- "$@" --protected-mode no ;;
        *) set -- "$@" --protected-mode no ;;
    esac
fi
exec "$@"
