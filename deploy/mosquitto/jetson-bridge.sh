#!/usr/bin/env bash
# Writes a Jetson's bridge file, jetson-bridge.conf.example filled in, for jetson.conf to include:
#   deploy/mosquitto/jetson-bridge.sh DEVICE_ID HOST:PORT FILE
# The device's cloud password comes from standard input (asked for without echo on a terminal), never from an
# argument: arguments show in ps and in the shell's history. FILE is created mode 600 and replaced whole.
set -euo pipefail
if [[ $# -ne 3 ]]; then
    echo "usage: $0 DEVICE_ID HOST:PORT FILE  (the device's cloud password on standard input)" >&2
    exit 2
fi
device=$1 broker=$2 file=$3
if [[ ! $device =~ ^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$ ]]; then
    echo "not a device id: '$device' (letters, digits, _ . -; at most 64)" >&2
    exit 2
fi
address='^[A-Za-z0-9.-]+:[0-9]+$'  # the cloud broker's host name or IPv4 address, and its port
if [[ ! $broker =~ $address ]]; then
    echo "not HOST:PORT: '$broker'" >&2
    exit 2
fi
if [[ -t 0 ]]; then
    read -rsp "the cloud password of $device: " password
    echo >&2
else
    IFS= read -r password || true
fi
# Mosquitto trims a line's surrounding blanks: such a password would not be the one the cloud has.
if [[ -z $password || $password =~ ^[[:space:]] || $password =~ [[:space:]]$ ]]; then
    echo "no password, or one that starts or ends with a blank: nothing written" >&2
    exit 2
fi
umask 077
: >"$file"
chmod 600 "$file"
EDGELOOP_DEVICE_ID=$device EDGELOOP_CLOUD_BROKER=$broker EDGELOOP_BRIDGE_PASSWORD=$password \
    envsubst '${EDGELOOP_DEVICE_ID} ${EDGELOOP_CLOUD_BROKER} ${EDGELOOP_BRIDGE_PASSWORD}' \
    <"$(dirname "$0")/jetson-bridge.conf.example" >"$file"
echo "wrote $file: $device, bridged to $broker" >&2
