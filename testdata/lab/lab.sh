#!/usr/bin/env bash
# sewatch live lab: real SoftEther VPN sessions (Debian's softether-vpnserver,
# -vpnclient, -vpncmd) between test hosts in network namespaces made here,
# with sewatch capturing LIVE (-i, AF_PACKET) on the router's client-side
# interface, plus look-alike traffic that must raise no SoftEther alert.
#
#   sw-cli (client)         sw-rtr (router, tap, proxies)         sw-srv (SoftEther server)
#   sw-c0 198.18.201.2 <--> sw-r1 198.18.201.1
#                           sw-r2 198.18.202.1  <------------>    sw-s0 198.18.202.2
#                           sw-r3 198.18.203.1  <------------>    sw-web: sw-w0 198.18.203.2 (nginx, sshd)
#
# No namespace has a route out; traffic only flows between these hosts.
#
# Usage: lab.sh deps | setup | run [MODE...] | all | teardown
#   env SEWATCH (binary, default ./sewatch), LAB_MODES, LAB_REQUIRE (modes that
#   must pass; default all selected), LAB_RESULTS (markdown table, default
#   /tmp/sewatch-lab-results.md), LAB_RUN (work dir, default /tmp/sw-lab),
#   LAB_NS (namespace name prefix, default sw-, so two labs can run side by side),
#   LAB_SSH_OPTS (extra ssh options for ssh-forward: another cipher or MAC),
#   LAB_REPEAT (run each mode N times; the table gives detections k/N and the
#   median time to detect), LAB_SE_SERVER_BIN / LAB_SE_CLIENT_BIN /
#   LAB_SE_VPNCMD_BIN (another vpnserver / vpnclient executable, e.g. one built
#   from source, with its hamcore.se2 beside it, and the vpncmd that manages
#   that client; default Debian's), LAB_VPN_KIB (size of the download through
#   each VPN session, default 256), LAB_WSS_SECONDS (length of the wss-feeds
#   negative, default 90), LAB_CHAT_SECONDS (length of the ssh-chat negative,
#   default 90).
# Each mode runs sewatch live on sw-r1 with tcpdump beside it; a positive passes
# when an alert whose signature contains "SoftEther" names the session's own
# endpoints (client and server/proxy address, and the port for TCP); time to
# detect is that alert's timestamp minus the session's first packet on the tap.
set -u
RUN=${LAB_RUN:-/tmp/sw-lab}
SEWATCH=$(readlink -f "${SEWATCH:-./sewatch}")
RESULTS=${LAB_RESULTS:-/tmp/sewatch-lab-results.md}
SE_LIB=/usr/libexec/softether
# The SoftEther builds under test. Servers are managed with Debian's vpncmd (its
# admin RPC talks to every build); a client with the vpncmd of its own build,
# since 4.x clients listen on 9930 and 5.x vpncmd only looks at 9931-9935.
SE_SERVER_BIN=$(readlink -f "${LAB_SE_SERVER_BIN:-$SE_LIB/vpnserver/vpnserver}")
SE_CLIENT_BIN=$(readlink -f "${LAB_SE_CLIENT_BIN:-$SE_LIB/vpnclient/vpnclient}")
SE_VPNCMD_BIN=$(readlink -f "${LAB_SE_VPNCMD_BIN:-$SE_LIB/vpncmd/vpncmd}")
P=${LAB_NS:-sw-}
NS_C=${P}cli NS_R=${P}rtr NS_S=${P}srv NS_W=${P}web
C_IP=198.18.201.2 R1_IP=198.18.201.1 R2_IP=198.18.202.1 S_IP=198.18.202.2 R3_IP=198.18.203.1 W_IP=198.18.203.2
ADMINPW=SwLabAdmin-7 HUB=SWLAB USERPW=SwLabUser-7 ACCT=sw PROXY_USER=swproxy PROXY_PW=SwProxy-7
C6_IP=fd00:201::2 R16_IP=fd00:201::1 R26_IP=fd00:202::1 S6_IP=fd00:202::2
WEB_IP=198.18.50.1 VHOST=198.18.100.1 VNIC=vpn_se0 # behind SecureNAT, reached only through the VPN
POSITIVE="direct-443 direct-5555 direct-992 encrypt-off one-tcp-encrypt-off encrypt-off-late compress half-duplex anonymous udp-accel-off one-tcp one-tcp-proxy http-proxy socks5 socks4 admin cascade vpn-over-icmp vpn-over-dns ssh-forward ssl-bump login-refused proxy-unreachable lossy lossy-http-proxy tinyproxy-auth socks5-auth ipv6 slow-link"
NEGATIVE="https-browse https-long ssh-interactive ssh-transfer ssh-forward-https ssh-forward-cookies ssh-forward-api ssh-chat curl-via-proxy openvpn wireguard https-retry bump-error-page poller-15s api-poller curl-pairs gnutls-pairs sclient-pairs wss-feeds curl-via-tinyproxy curl-via-socks5-auth lossy-https-browse lossy-api-poller lossy-wss-feeds"
DEFAULT_REQUIRE="$POSITIVE $NEGATIVE"

# ssh from the client host: the lab's key, no host-key prompts
SSH_OPTS=(-i "$RUN/ssh_key" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null)
web_forward() { # web_forward: ssh -L 127.0.0.1:18443 -> the web host's HTTPS, in the background
  bg sshfwd nsx $NS_C ssh -N "${SSH_OPTS[@]}" -L 127.0.0.1:18443:$W_IP:443 root@$W_IP
  wait_for 10 listening $NS_C 18443 || SESSION_OK=no
}

# pair_requests COOKIE1 FILE2 COOKIE2: two keep-alive requests to the web host, /p700.bin
# with a COOKIE1-byte cookie, then FILE2 with a COOKIE2-byte one, and time for the answers.
pair_requests() {
  printf 'GET /p700.bin HTTP/1.1\r\nHost: %s\r\nCookie: s=%s\r\n\r\n' $W_IP "$(head -c "$1" /dev/zero | tr '\0' a)"
  sleep 0.5
  printf 'GET /%s HTTP/1.1\r\nHost: %s\r\nCookie: s=%s\r\n\r\n' "$2" $W_IP "$(head -c "$3" /dev/zero | tr '\0' b)"
  sleep 1.5
}
# gnutls_pair / sclient_pair COOKIE1 FILE2 COOKIE2: pair_requests over one connection of
# GnuTLS (no ALPN, session tickets off) or OpenSSL's s_client -no_ticket.
gnutls_pair() { pair_requests "$@" | nsx $NS_C gnutls-cli --priority 'NORMAL:%NO_TICKETS' --insecure -p 443 $W_IP >/dev/null 2>&1; }
sclient_pair() { pair_requests "$@" | nsx $NS_C openssl s_client -brief -nocommands -no_ticket -connect $W_IP:443 >/dev/null 2>&1; }
# curl_pair BASE COOKIE1 FILE2 COOKIE2: the two requests of pair_requests, sent by curl (ALPN http/1.1) over one
# connection to BASE (https://HOST:PORT).
curl_pair() {
  nsx $NS_C curl -sk --http1.1 --max-time 10 -o /dev/null -H "Cookie: s=$(head -c "$2" /dev/zero | tr '\0' a)" "$1/p700.bin" \
    --next -sk --http1.1 --max-time 10 -o /dev/null -H "Cookie: s=$(head -c "$4" /dev/zero | tr '\0' b)" "$1/$3"
}
# pairs PAIRFN: two connections 1 s apart, each opening with a 1.7-2.6-KB cookie answered
# by the 700-B file; then on the first a 2.6-4-KB cookie answered by the 3000-B file, on
# the second a 0.4-0.9-KB cookie answered by the 700-B file; twice, 15 s apart. In size: SoftEther's watermark, hello, login and welcome, and an additional
# connection, the cookies of new sizes every time.
pairs() {
  local i pid
  for i in 1 2; do
    [ "$i" -gt 1 ] && sleep 15
    "$1" $((1700 + RANDOM % 900)) p3000.bin $((2600 + RANDOM % 1400)) &
    pid=$!
    sleep 1
    "$1" $((1700 + RANDOM % 900)) p700.bin $((400 + RANDOM % 500)) || SESSION_OK=no
    wait $pid || SESSION_OK=no
  done
}

log() { printf '[%s] %s\n' "$(date +%T)" "$*" >&2; }
nsx() { local ns=$1; shift; ip netns exec "$ns" "$@"; }
wait_for() { # wait_for SECONDS CMD... (deadline, however long CMD takes)
  local end=$((SECONDS + $1))
  while [ $SECONDS -lt $end ]; do "${@:2}" >/dev/null 2>&1 && return 0; sleep 0.25; done; return 1
}
listening() { nsx "$1" ss -Hlnt "sport = :$2" | grep -q .; }

deps() {
  echo softether-vpnserver softether-vpnclient softether-vpncmd squid-openssl dante-server nginx-light \
    openssh-server openssh-client curl openssl busybox iproute2 iputils-ping iptables tcpdump python3 \
    openvpn wireguard-go wireguard-tools tinyproxy microsocks gnutls-bin
}

# ------------------------------------------------------------ processes
bg() { # bg NAME CMD... : own process group, pid recorded (CMD may be a function of this script)
  local name=$1; shift
  # Empty the log before the background start: its redirection happens in
  # the child, after this returns, and a wait_for on the log could read the
  # previous run's lines (a stale "Initialization Sequence Completed" once
  # sent the openvpn mode's ping ahead of its tunnel).
  : >"$RUN/logs/$name.log"
  setsid bash -c '"$@"' bash "$@" >>"$RUN/logs/$name.log" 2>&1 </dev/null &
  echo $! >"$RUN/pids/$name.pid"
}
stop() { # stop NAME [SIGNAL]
  local f=$RUN/pids/$1.pid pid
  [ -f "$f" ] || return 0
  pid=$(cat "$f")
  kill -"${2:-TERM}" -- -"$pid" 2>/dev/null || kill -"${2:-TERM}" "$pid" 2>/dev/null
  for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
  kill -KILL -- -"$pid" 2>/dev/null
  rm -f "$f"
}

# ------------------------------------------------------------ SoftEther
# Debian's build keeps its state in /var/lib/softether: each instance runs
# in its own mount namespace with private copies of those directories.
se_instance() { # se_instance KIND DIR
  local exe=$SE_LIB/$1/$1
  case $1 in vpnserver) exe=$SE_SERVER_BIN ;; vpnclient) exe=$SE_CLIENT_BIN ;; clicmd) exe=$SE_VPNCMD_BIN ;; esac
  rm -rf "$2"; mkdir -p "$2"/{bin,db,log,pid}
  # A build from source keeps its state beside the executable, Debian's in the bind-mounted directories.
  cp -L "$exe" "$2/bin/${1/clicmd/vpncmd}" && cp -L "$(dirname "$exe")/hamcore.se2" "$2/bin/"
}
se_run() { # se_run NS DIR CMD... (foreground)
  local ns=$1 dir=$2; shift 2
  ip netns exec "$ns" unshare --mount --propagation private sh -c '
    d=$0; mount --bind "$d/db" /var/lib/softether && mount --bind "$d/log" /var/log/softether &&
    mount --bind "$d/pid" /run/softether && cd "$d/bin" && exec "$@"' "$dir" "$@"
}
vpncmd() { # vpncmd NS ARGS... (VPNCMD=clicmd: the client build's vpncmd)
  local kind=${VPNCMD:-vpncmd}
  [ -x "$RUN/$kind/bin/vpncmd" ] || se_instance "$kind" "$RUN/$kind"
  local ns=$1; shift
  timeout 30 bash -c '"$@"' bash se_run "$ns" "$RUN/$kind" "$RUN/$kind/bin/vpncmd" "$@" </dev/null
}
export -f se_run nsx

srv() { vpncmd $NS_S 127.0.0.1:5555 /SERVER /PASSWORD:$ADMINPW /CMD "$@"; }
cli() { VPNCMD=clicmd vpncmd $NS_C localhost /CLIENT /CMD "$@"; }

setup() {
  mkdir -p "$RUN"/{pids,logs,eve,www,cap} /var/lib/softether /var/log/softether /run/softether /run/sshd
  if [ -f "$RUN/setup.done" ] && ip netns list | grep -qw $NS_R && kill -0 "$(cat "$RUN/pids/vpnserver.pid" 2>/dev/null)" 2>/dev/null &&
    kill -0 "$(cat "$RUN/pids/vpnclient.pid" 2>/dev/null)" 2>/dev/null; then return 0; fi
  ip netns list | grep -qw $NS_R && { log "setup: incomplete lab found, rebuilding"; teardown; }
  rm -f "$RUN/setup.done"
  log "setup: namespaces"
  local ns
  for ns in $NS_C $NS_R $NS_S $NS_W; do
    ip netns add $ns
    nsx $ns sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
    nsx $ns ip link set lo up
  done
  ip -n $NS_C link add sw-c0 type veth peer name sw-r1 netns $NS_R
  ip -n $NS_S link add sw-s0 type veth peer name sw-r2 netns $NS_R
  ip -n $NS_C addr add $C_IP/24 dev sw-c0 && ip -n $NS_C link set sw-c0 up
  ip -n $NS_R addr add $R1_IP/24 dev sw-r1 && ip -n $NS_R link set sw-r1 up
  ip -n $NS_R addr add $R2_IP/24 dev sw-r2 && ip -n $NS_R link set sw-r2 up
  ip -n $NS_S addr add $S_IP/24 dev sw-s0 && ip -n $NS_S link set sw-s0 up
  ip -n $NS_W link add sw-w0 type veth peer name sw-r3 netns $NS_R
  ip -n $NS_R addr add $R3_IP/24 dev sw-r3 && ip -n $NS_R link set sw-r3 up
  ip -n $NS_W addr add $W_IP/24 dev sw-w0 && ip -n $NS_W link set sw-w0 up
  nsx $NS_R sysctl -qw net.ipv4.ip_forward=1
  ip -n $NS_C route add 198.18.202.0/24 via $R1_IP
  ip -n $NS_C route add 198.18.203.0/24 via $R1_IP
  ip -n $NS_S route add 198.18.201.0/24 via $R2_IP
  ip -n $NS_W route add 198.18.201.0/24 via $R3_IP
  ip -n $NS_W route add 198.18.202.0/24 via $R3_IP
  ip -n $NS_S route add 198.18.203.0/24 via $R2_IP
  ip -n $NS_S addr add $WEB_IP/32 dev lo
  nsx $NS_C ping -c1 -W2 $S_IP >/dev/null || { log "setup: no route from client to server"; return 1; }

  # web server behind SecureNAT (the server host's loopback) for traffic through the VPN
  head -c $((${LAB_VPN_KIB:-256} * 1024)) /dev/urandom >"$RUN/www/small.bin"
  bg websrv nsx $NS_S busybox httpd -f -p $WEB_IP:80 -h "$RUN/www"
  cat >"$RUN/udhcpc.script" <<'EOF'
#!/bin/sh
# address only: no default route, no resolv.conf
case "$1" in
  deconfig) ip -4 addr flush dev "$interface"; ip link set "$interface" up ;;
  bound|renew) ip -4 addr flush dev "$interface"; ip addr add "$ip/${mask:-24}" dev "$interface" ;;
esac
EOF
  chmod +x "$RUN/udhcpc.script"

  log "setup: SoftEther server"
  se_instance vpnserver "$RUN/srv"
  bg vpnserver se_run $NS_S "$RUN/srv" "$RUN/srv/bin/vpnserver" start --foreground
  wait_for 40 listening $NS_S 5555 || { log "vpnserver did not listen"; return 1; }
  sleep 2
  vpncmd $NS_S 127.0.0.1:5555 /SERVER /CMD ServerPasswordSet $ADMINPW >"$RUN/logs/srv-pw.log" 2>&1
  cat >"$RUN/srv-setup.txt" <<EOF
HubCreate $HUB /PASSWORD:$USERPW
Hub $HUB
UserCreate user1 /GROUP:none /REALNAME:none /NOTE:none
UserPasswordSet user1 /PASSWORD:$USERPW
UserCreate anon /GROUP:none /REALNAME:none /NOTE:none
UserAnonymousSet anon
ExtOptionSet DisableKernelModeSecureNAT /VALUE:1
ExtOptionSet DisableIpRawModeSecureNAT /VALUE:1
SecureNatHostSet /MAC:none /IP:$VHOST /MASK:255.255.255.0
DhcpSet /START:198.18.100.10 /END:198.18.100.99 /MASK:255.255.255.0 /EXPIRE:7200 /GW:$VHOST /DNS:$VHOST /DNS2:none /DOMAIN:none /LOG:no /PUSHROUTE:none
SecureNatEnable
EOF
  vpncmd $NS_S 127.0.0.1:5555 /SERVER /PASSWORD:$ADMINPW /IN:"$RUN/srv-setup.txt" >"$RUN/logs/srv-hub.log" 2>&1
  grep -q "Error occurred" "$RUN/logs/srv-hub.log" && { log "server setup failed: see $RUN/logs/srv-hub.log"; return 1; }
  # VPN over ICMP and DNS are off by default; the modes that use them block TCP.
  srv VpnOverIcmpDnsEnable /ICMP:yes /DNS:yes >"$RUN/logs/srv-icmpdns.log" 2>&1

  log "setup: SoftEther client"
  se_instance vpnclient "$RUN/cli"
  bg vpnclient se_run $NS_C "$RUN/cli" "$RUN/cli/bin/vpnclient" start --foreground
  wait_for 30 sh -c "ip netns exec $NS_C ss -Hlnt | grep -Eq ':993[01] '" || { log "vpnclient did not listen"; return 1; }
  sleep 1
  cli NicCreate se0 >"$RUN/logs/cli-setup.log" 2>&1
  cli AccountCreate $ACCT /SERVER:$S_IP:443 /HUB:$HUB /USERNAME:user1 /NICNAME:se0 >>"$RUN/logs/cli-setup.log" 2>&1
  cli AccountPasswordSet $ACCT /PASSWORD:$USERPW /TYPE:standard >>"$RUN/logs/cli-setup.log" 2>&1

  log "setup: look-alike servers and proxies"
  openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=www.lab.test" \
    -keyout "$RUN/key.pem" -out "$RUN/cert.pem" >/dev/null 2>&1
  head -c 8388608 /dev/urandom >"$RUN/www/big.bin"; echo "lab page" >"$RUN/www/index.html"
  head -c 700 /dev/urandom >"$RUN/www/p700.bin"; head -c 3000 /dev/urandom >"$RUN/www/p3000.bin"
  cat >"$RUN/nginx.conf" <<EOF
daemon off; worker_processes 1; pid $RUN/nginx.pid; error_log $RUN/logs/nginx-error.log;
events { worker_connections 64; }
http { access_log off; server { listen $W_IP:443 ssl; ssl_certificate $RUN/cert.pem;
  ssl_certificate_key $RUN/key.pem; root $RUN/www; location /fail { return 502; } } }
EOF
  bg nginx nsx $NS_W nginx -c "$RUN/nginx.conf"
  ssh-keygen -q -t ed25519 -N '' -f "$RUN/ssh_key" <<<y >/dev/null 2>&1
  ssh-keygen -q -t ed25519 -N '' -f "$RUN/host_key" <<<y >/dev/null 2>&1
  cat >"$RUN/sshd_config" <<EOF
ListenAddress $W_IP
HostKey $RUN/host_key
AuthorizedKeysFile $RUN/ssh_key.pub
PermitRootLogin yes
UsePAM no
StrictModes no
PidFile $RUN/sshd.pid
EOF
  bg sshd nsx $NS_W /usr/sbin/sshd -D -f "$RUN/sshd_config"
  # squid's second port intercepts TLS (ssl-bump: peek at the ClientHello, then
  # bump) with a CA nobody trusts: SoftEther's client verifies nothing by default.
  openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=lab inspection CA" \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
    -keyout "$RUN/bump-ca.key" -out "$RUN/bump-ca.pem" >/dev/null 2>&1
  rm -rf "$RUN/ssl_db"
  /usr/lib/squid/security_file_certgen -c -s "$RUN/ssl_db" -M 4MB >/dev/null 2>&1
  chown -R proxy: "$RUN/ssl_db" "$RUN/bump-ca.key" 2>/dev/null
  cat >"$RUN/squid.conf" <<EOF
http_port $R1_IP:3128
http_port $R1_IP:3129 ssl-bump generate-host-certificates=on dynamic_cert_mem_cache_size=4MB tls-cert=$RUN/bump-ca.pem tls-key=$RUN/bump-ca.key
sslcrtd_program /usr/lib/squid/security_file_certgen -s $RUN/ssl_db -M 4MB
sslcrtd_children 2 startup=1 idle=1
acl step1 at_step SslBump1
ssl_bump peek step1
ssl_bump bump all
sslproxy_cert_error allow all
tls_outgoing_options flags=DONT_VERIFY_PEER
connect_timeout 1 seconds
acl lab_blocked urlpath_regex ^/blocked
http_access deny lab_blocked
acl all_src src all
http_access allow all_src
pid_filename $RUN/squid.pid
cache deny all
access_log none
cache_log $RUN/logs/squid-cache.log
coredump_dir $RUN
EOF
  bg squid nsx $NS_R squid -N -f "$RUN/squid.conf"
  cat >"$RUN/danted.conf" <<EOF
logoutput: $RUN/logs/danted.log
internal: $R1_IP port = 1080
external: $R2_IP
clientmethod: none
socksmethod: none
user.privileged: root
user.unprivileged: nobody
client pass { from: 198.18.201.0/24 to: 0.0.0.0/0 }
socks pass { from: 198.18.201.0/24 to: 198.18.202.0/24 }
socks pass { from: 198.18.201.0/24 to: 198.18.203.0/24 }
EOF
  bg danted nsx $NS_R danted -f "$RUN/danted.conf"
  # Proxies other than squid and dante, each asking for credentials:
  # tinyproxy (HTTP CONNECT, basic auth) and microsocks (SOCKS5,
  # username/password, RFC 1929).
  cat >"$RUN/tinyproxy.conf" <<EOF
User nobody
Group nogroup
Port 8888
Listen $R1_IP
Timeout 600
Allow 198.18.201.0/24
ConnectPort 443
BasicAuth $PROXY_USER $PROXY_PW
EOF
  bg tinyproxy nsx $NS_R tinyproxy -d -c "$RUN/tinyproxy.conf"
  bg microsocks nsx $NS_R microsocks -i $R1_IP -p 1081 -u $PROXY_USER -P $PROXY_PW
  wait_for 20 listening $NS_W 443 && wait_for 20 listening $NS_W 22 && wait_for 20 listening $NS_R 3128 && wait_for 20 listening $NS_R 3129 && wait_for 20 listening $NS_R 1080 &&
    wait_for 20 listening $NS_R 8888 && wait_for 20 listening $NS_R 1081 || {
    log "setup: a look-alike server did not start"; return 1; }
  touch "$RUN/setup.done"
}

teardown() {
  local f
  for f in "$RUN"/pids/*.pid; do [ -e "$f" ] && stop "$(basename "$f" .pid)"; done
  # Builds without "start --foreground" (4.x) daemonize out of the process group stop() kills.
  local pid
  for pid in $(pgrep -f "^$RUN/[a-z]+/bin/vpn(server|client) "); do kill "$pid" 2>/dev/null; done
  for ns in $NS_C $NS_R $NS_S $NS_W; do ip netns list | grep -qw $ns && ip netns del $ns; done
  rm -f "$RUN/setup.done"
  return 0
}

# ------------------------------------------------------------ one mode
detail() { cli AccountDetailSet $ACCT /MAXTCP:${MAXTCP:-1} /INTERVAL:1 /TTL:0 /HALF:${HALF:-no} /BRIDGE:no /MONITOR:no /NOTRACK:no "$@" 2>&1; }
hub_udp_accel_off() { # hub_udp_accel_off 1|0: the hub's DisableUdpAcceleration option
  vpncmd $NS_S 127.0.0.1:5555 /SERVER /PASSWORD:$ADMINPW /ADMINHUB:$HUB /CMD ExtOptionSet DisableUdpAcceleration /VALUE:$1 >/dev/null 2>&1
  if [ "$1" = 1 ]; then touch "$RUN/hub-udp-off"; else rm -f "$RUN/hub-udp-off"; fi
}
connected() { cli AccountStatusGet $ACCT 2>/dev/null | grep -q "Session Established"; }

account_reset() { # account_reset MODE: undo the account options MODE set (the next modes expect defaults)
  case $1 in
    encrypt-off | one-tcp-encrypt-off | encrypt-off-late) cli AccountEncryptEnable $ACCT >/dev/null 2>&1 ;;
    compress) cli AccountCompressDisable $ACCT >/dev/null 2>&1 ;;
    anonymous) cli AccountUsernameSet $ACCT /USERNAME:user1 >/dev/null 2>&1
      cli AccountPasswordSet $ACCT /PASSWORD:$USERPW /TYPE:standard >/dev/null 2>&1 ;;
  esac
  return 0
}

session() { # session MODE: configure the account for MODE, connect, hold, disconnect
  cli AccountDisconnect $ACCT >/dev/null 2>&1
  cli AccountProxyNone $ACCT >/dev/null 2>&1
  [ -f "$RUN/hub-udp-off" ] && hub_udp_accel_off 0
  VPN_NOTE=""
  local port=443 udp=no host=$S_IP qos=no MAXTCP=1 HALF=no
  case $1 in
    vpn-over-icmp | vpn-over-dns)
      # The router rejects TCP to the server (and for ICMP, drops UDP/53), so
      # the client's R-UDP race falls back to ICMP or DNS.
      nsx $NS_R iptables -I FORWARD -s 198.18.201.0/24 -d $S_IP -p tcp -j REJECT --reject-with tcp-reset
      [ "$1" = vpn-over-icmp ] && nsx $NS_R iptables -I FORWARD -s 198.18.201.0/24 -d $S_IP -p udp --dport 53 -j DROP ;;
    ssh-forward)
      # LAB_SSH_OPTS: extra ssh options (another cipher or MAC, say)
      # shellcheck disable=SC2086
      bg sshfwd nsx $NS_C ssh -N "${SSH_OPTS[@]}" ${LAB_SSH_OPTS:-} -L 127.0.0.1:10443:$S_IP:443 root@$W_IP
      wait_for 10 listening $NS_C 10443
      host=127.0.0.1 port=10443 udp=yes ;;
    direct-5555) port=5555 ;;
    direct-992) port=992 ;;
    udp-accel-off) udp=yes ;;
    one-tcp) udp=yes qos=yes ;; # without QoS neither side asks for a second connection
    one-tcp-proxy) udp=yes qos=yes
      cli AccountProxyHttp $ACCT /SERVER:$R1_IP:3128 /USERNAME:none /PASSWORD:none >/dev/null 2>&1 ;;
    http-proxy) cli AccountProxyHttp $ACCT /SERVER:$R1_IP:3128 /USERNAME:none /PASSWORD:none >/dev/null 2>&1 ;;
    socks5) cli AccountProxySocks5 $ACCT /SERVER:$R1_IP:1080 /USERNAME:none /PASSWORD:none >/dev/null 2>&1 ;;
    socks4) cli AccountProxySocks $ACCT /SERVER:$R1_IP:1080 /USERNAME:none >/dev/null 2>&1 ;; # the only SOCKS of 4.x clients
    tinyproxy-auth) cli AccountProxyHttp $ACCT /SERVER:$R1_IP:8888 /USERNAME:$PROXY_USER /PASSWORD:$PROXY_PW >/dev/null 2>&1 ;;
    socks5-auth) cli AccountProxySocks5 $ACCT /SERVER:$R1_IP:1081 /USERNAME:$PROXY_USER /PASSWORD:$PROXY_PW >/dev/null 2>&1 ;;
    # Account options the other modes leave at their defaults:
    # no encryption after the login (the tunnel's frames in clear), compression,
    # half-duplex legs (four: two each way), anonymous login (the hub's user anon).
    encrypt-off) cli AccountEncryptDisable $ACCT >/dev/null 2>&1 ;;
    one-tcp-encrypt-off) udp=yes qos=yes; cli AccountEncryptDisable $ACCT >/dev/null 2>&1 ;;
    encrypt-off-late) udp=yes; cli AccountEncryptDisable $ACCT >/dev/null 2>&1 ;;
    compress) cli AccountCompressEnable $ACCT >/dev/null 2>&1 ;;
    half-duplex) MAXTCP=4 HALF=yes ;;
    anonymous) cli AccountUsernameSet $ACCT /USERNAME:anon >/dev/null 2>&1; cli AccountAnonymousSet $ACCT >/dev/null 2>&1 ;;
    # Packet loss on the path (no netem here: iptables drops at random in the
    # router, after the tap for what the client sends, before it for what
    # the client receives), so the tap sees retransmissions, duplicates and
    # segments that never arrive: LAB_LOSS percent (default 5) each way.
    lossy) lossy_path FORWARD ;;
    # A slow link: the router shapes both directions to 1 Mbit/s with up to
    # 300 ms of queue (tbf), so the download through the tunnel queues the
    # session's records behind each other and stretches every exchange.
    slow-link) slow_path on ;;
    ipv6) ipv6_path on; host="[$S6_IP]" ;; # the server's address as SoftEther's client takes an IPv6 literal
    lossy-http-proxy) lossy_path PROXY
      cli AccountProxyHttp $ACCT /SERVER:$R1_IP:3128 /USERNAME:none /PASSWORD:none >/dev/null 2>&1 ;;
  esac
  cli AccountSet $ACCT /SERVER:$host:$port /HUB:$HUB >/dev/null 2>&1
  # 4.x vpncmd has no /DISABLEUDP: the hub then refuses UDP acceleration instead.
  if ! detail /NOQOS:$qos /DISABLEUDP:$udp | grep -q "completed successfully"; then
    detail /NOQOS:$qos >/dev/null
    [ "$udp" = yes ] && hub_udp_accel_off 1
  fi
  START=$(date +%s.%N)
  cli AccountConnect $ACCT >"$RUN/logs/connect-$1.log" 2>&1
  if ! wait_for 40 connected; then
    log "$1: session did not come up"; SESSION_OK=no
    cli AccountDisconnect $ACCT >/dev/null 2>&1; account_reset "$1"; stop sshfwd; path_reset "$1"
    return
  fi
  SESSION_OK=yes
  vpn_traffic "$1"
  # One connection alone shows SoftEther by its keep-alive rhythm (4-10 s per
  # direction when idle): hold the session idle long enough for several.
  # one TCP connection: idle long enough for its keep-alive rhythm (30 s of
  # liveness after the connect phase, with margin)
  # Through an SSH forward the session's second leg connects while the
  # download runs and its connect phase is lost among the download's writes,
  # and one SSH connection's connect phase and the data after it are no alert
  # (a web page through a forward looks the same): the idle session's
  # keep-alives inside the SSH connection show it. Hold it idle until the
  # alert (at most 120 s).
  case $1 in
    one-tcp) sleep 30 ;;
    one-tcp-proxy) sleep 45 ;;
    ssh-forward) wait_for 120 grep -q SoftEther "$RUN/eve/$1.json" || log "$1: no alert within 120 s of idling" ;;
    encrypt-off-late) # tap and sewatch join the idle session 15 s after it came up: no handshake seen
      mode_stop; sleep 15; mode_start "$1"; START=$(date +%s.%N)
      wait_for 90 grep -q SoftEther "$RUN/eve/$1.json" || log "$1: no alert within 90 s of joining" ;;
  esac
  cli AccountDisconnect $ACCT >/dev/null 2>&1
  account_reset "$1"
  nsx $NS_C ip -4 addr flush dev $VNIC 2>/dev/null
  stop sshfwd
  path_reset "$1"
}

path_reset() { # path_reset MODE: undo what MODE did to the path (router filters, loss, IPv6, shaping)
  local t
  for t in FORWARD INPUT OUTPUT; do nsx $NS_R iptables -F $t 2>/dev/null; done
  case $1 in
    ipv6) ipv6_path off ;;
    slow-link) slow_path off ;;
  esac
  return 0
}

slow_path() { # slow_path on|off: 1 Mbit/s, 300 ms of queue, on the router's client- and server-side links
  local dev
  for dev in sw-r1 sw-r2; do
    if [ "$1" = on ]; then nsx $NS_R tc qdisc replace dev $dev root tbf rate 1mbit burst 16kb latency 300ms
    else nsx $NS_R tc qdisc del dev $dev root 2>/dev/null; fi
  done
}

ipv6_path() { # ipv6_path on|off: IPv6 between client and server through the router (off everywhere else)
  local x ns dev addr v=1
  [ "$1" = on ] && v=0
  for x in "$NS_C sw-c0 $C6_IP" "$NS_R sw-r1 $R16_IP" "$NS_R sw-r2 $R26_IP" "$NS_S sw-s0 $S6_IP"; do
    read -r ns dev addr <<<"$x"
    nsx "$ns" sysctl -qw net.ipv6.conf.$dev.disable_ipv6=$v
    [ $v = 0 ] && ip -n "$ns" addr add "$addr/64" dev "$dev" nodad
  done
  if [ $v = 0 ]; then
    nsx $NS_R sysctl -qw net.ipv6.conf.all.forwarding=1
    ip -n $NS_C route add fd00:202::/64 via $R16_IP
    ip -n $NS_S route add fd00:201::/64 via $R26_IP
    wait_for 5 nsx $NS_C ping -6 -c1 -W1 $S6_IP
  fi
}

lossy_path() { # lossy_path FORWARD|PROXY: drop LAB_LOSS % of the packets between client and server (or proxy) each way
  local p
  p=$(awk -v l="${LAB_LOSS:-5}" 'BEGIN { printf "%.4f", l / 100 }')
  if [ "$1" = FORWARD ]; then
    nsx $NS_R iptables -I FORWARD -m statistic --mode random --probability "$p" -j DROP
  else # the client's leg to the proxy on the router itself
    nsx $NS_R iptables -I INPUT -i sw-r1 -p tcp --dport 3128 -m statistic --mode random --probability "$p" -j DROP
    nsx $NS_R iptables -I OUTPUT -o sw-r1 -p tcp --sport 3128 -m statistic --mode random --probability "$p" -j DROP
  fi
}

vpn_traffic() { # DHCP from SecureNAT, ping its virtual host, small HTTP download through the VPN
  local r=""
  nsx $NS_C ip link set $VNIC up 2>/dev/null
  if nsx $NS_C timeout 20 busybox udhcpc -i $VNIC -s "$RUN/udhcpc.script" -n -q -f -t 5 -T 2 >"$RUN/logs/udhcpc-$1.log" 2>&1; then
    nsx $NS_C ip route replace $WEB_IP/32 via $VHOST dev $VNIC
    nsx $NS_C ping -c 3 -i 0.3 -W 2 $VHOST >"$RUN/logs/ping-$1.log" 2>&1 && r="ping ok" || r="ping failed"
    r="$r, http $(nsx $NS_C curl -s -o /dev/null --max-time 15 -w '%{http_code} %{size_download}B' http://$WEB_IP/small.bin)"
  else
    r="DHCP through the VPN failed"
  fi
  VPN_NOTE=$r
  log "$1: $r"
  sleep 1
}

# attempts MODE: a SoftEther client that keeps trying and never holds a session:
# ssl-bump (squid bumps the TLS and breaks the tunnel after the welcome; the
# client re-adds a leg every second), login-refused (wrong password),
# proxy-unreachable (through squid while the router drops squid's SYNs to the
# server). Waits for the attempt alert (at most 45 s) instead of a fixed time.
attempts() {
  VPN_NOTE="" SESSION_OK=yes
  cli AccountDisconnect $ACCT >/dev/null 2>&1
  { # one vpncmd run (each costs about a second)
    echo "AccountProxyNone $ACCT"
    case $1 in
      ssl-bump) echo "AccountProxyHttp $ACCT /SERVER:$R1_IP:3129 /USERNAME:none /PASSWORD:none" ;;
      login-refused) echo "AccountPasswordSet $ACCT /PASSWORD:Wrong-$USERPW /TYPE:standard" ;;
      proxy-unreachable) echo "AccountProxyHttp $ACCT /SERVER:$R1_IP:3128 /USERNAME:none /PASSWORD:none" ;;
    esac
    echo "AccountSet $ACCT /SERVER:$S_IP:443 /HUB:$HUB"
    echo "AccountDetailSet $ACCT /MAXTCP:1 /INTERVAL:1 /TTL:0 /HALF:no /BRIDGE:no /MONITOR:no /NOTRACK:no /NOQOS:no /DISABLEUDP:yes"
    echo "AccountRetrySet $ACCT /NUM:999 /INTERVAL:5"
  } >"$RUN/attempt-$1.txt"
  [ "$1" = proxy-unreachable ] && nsx $NS_R iptables -I OUTPUT -d $S_IP -p tcp -j DROP
  vpncmd $NS_C localhost /CLIENT /IN:"$RUN/attempt-$1.txt" >"$RUN/logs/attempt-setup-$1.log" 2>&1
  START=$(date +%s.%N)
  cli AccountConnect $ACCT >"$RUN/logs/connect-$1.log" 2>&1
  local evs="$RUN/eve/$1.json"
  [ "$1" = ssl-bump ] && evs="$evs $RUN/eve/$1-server-leg.json"
  # shellcheck disable=SC2086
  wait_for 45 sh -c 'for f; do grep -q "connection attempts" "$f" || exit 1; done' sh $evs || log "$1: no attempt alert within 45 s"
  cli AccountDisconnect $ACCT >/dev/null 2>&1
  printf '%s\n' "AccountProxyNone $ACCT" "AccountPasswordSet $ACCT /PASSWORD:$USERPW /TYPE:standard" >"$RUN/attempt-reset.txt"
  vpncmd $NS_C localhost /CLIENT /IN:"$RUN/attempt-reset.txt" >>"$RUN/logs/attempt-setup-$1.log" 2>&1
  nsx $NS_R iptables -D OUTPUT -d $S_IP -p tcp -j DROP 2>/dev/null
}

negative() { # negative MODE: ordinary traffic that must not look like SoftEther
  START=$(date +%s.%N) VPN_NOTE=""
  SESSION_OK=yes
  # lossy-MODE: MODE with LAB_LOSS % of the packets dropped each way (see lossy_path)
  local base=$1
  case $1 in lossy-*) base=${1#lossy-}; lossy_path FORWARD ;; esac
  case $base in
    https-browse) for _ in 1 2 3 4 5; do nsx $NS_C curl -sk --max-time 10 -o /dev/null https://$W_IP/index.html; sleep 0.5; done ;;
    https-long) nsx $NS_C curl -sk --max-time 30 --limit-rate 2M -o /dev/null https://$W_IP/big.bin ;;
    ssh-interactive) nsx $NS_C ssh "${SSH_OPTS[@]}" \
        root@$W_IP 'for i in 1 2 3 4 5 6; do echo tick $i; sleep 1; done; uname -a' >/dev/null 2>&1 || SESSION_OK=no ;;
    ssh-transfer) # scp both ways (kilobyte files too) and remote commands with kilobyte output
      local _
      for _ in 1 2 3; do
        nsx $NS_C scp -O -q "${SSH_OPTS[@]}" "$RUN/www/p3000.bin" "$RUN/www/small.bin" root@$W_IP:/tmp/ || SESSION_OK=no
        nsx $NS_C scp -O -q "${SSH_OPTS[@]}" root@$W_IP:"$RUN/www/p700.bin" root@$W_IP:"$RUN/www/p3000.bin" "$RUN/" || SESSION_OK=no
      done
      head -c 4000 /dev/urandom | base64 | nsx $NS_C ssh "${SSH_OPTS[@]}" root@$W_IP \
        'cat >/dev/null; head -c 3000 /dev/urandom | base64; sleep 0.2; ls -la /usr/bin | head -50' >/dev/null 2>&1 || SESSION_OK=no ;;
    ssh-forward-https)
      web_forward
      for _ in 1 2 3; do nsx $NS_C curl -sk --max-time 10 -o /dev/null https://127.0.0.1:18443/big.bin || SESSION_OK=no; done
      stop sshfwd ;;
    ssh-chat) # two sides chatting through one SSH forward for LAB_CHAT_SECONDS (default 90):
      # each sends 40-600-B messages at random, 2 s apart on average, never answering the
      # other: the idle rhythm of a SoftEther tunnel inside SSH, which alone (with its
      # sustained form a minute later) raised a session alert before it needed a connect phase
      chat_py >"$RUN/chat.py"
      bg chat-srv nsx $NS_W python3 "$RUN/chat.py" server
      bg sshfwd nsx $NS_C ssh -N "${SSH_OPTS[@]}" -L 127.0.0.1:17000:127.0.0.1:7000 root@$W_IP
      wait_for 10 listening $NS_C 17000 || SESSION_OK=no
      nsx $NS_C python3 "$RUN/chat.py" client "${LAB_CHAT_SECONDS:-90}" || SESSION_OK=no
      stop sshfwd
      stop chat-srv ;;
    ssh-forward-cookies) # a polling client whose requests and answers fall in SoftEther's connect-phase sizes
      web_forward
      for _ in 1 2 3; do
        curl_pair https://127.0.0.1:18443 1800 p3000.bin 3000 || SESSION_OK=no
        sleep 1
      done
      stop sshfwd ;;
    ssh-forward-api) # an API client through an SSH forward: a new connection every 2 s, each with two
      # requests whose kilobyte cookies have new sizes every time (batches of changing size), answered in
      # SoftEther's hello and welcome sizes: connect phases that differ, as SoftEther's padded ones do
      web_forward
      for _ in 1 2 3 4 5 6; do
        curl_pair https://127.0.0.1:18443 $((1500 + RANDOM % 1800)) p3000.bin $((2500 + RANDOM % 3000)) || SESSION_OK=no
        sleep 2
      done
      stop sshfwd ;;
    openvpn) # static-key point-to-point tunnel over UDP 1194 to the web host, pings through it
      command -v openvpn >/dev/null || { SESSION_OK=skip; return; }
      [ -f "$RUN/ovpn.key" ] || openvpn --genkey secret "$RUN/ovpn.key" >/dev/null 2>&1
      local o="--dev-type tun --proto udp --port 1194 --secret $RUN/ovpn.key --cipher AES-256-CBC --auth SHA256 --verb 3"
      # shellcheck disable=SC2086
      bg ovpn-srv nsx $NS_W openvpn $o --dev ${P}ovs --local $W_IP --ifconfig 10.99.0.1 10.99.0.2
      # shellcheck disable=SC2086
      bg ovpn-cli nsx $NS_C openvpn $o --dev ${P}ovc --remote $W_IP --ifconfig 10.99.0.2 10.99.0.1
      if wait_for 20 grep -q "Initialization Sequence Completed" "$RUN/logs/ovpn-cli.log"; then
        nsx $NS_C ping -c 5 -i 0.5 -W 2 10.99.0.1 >"$RUN/logs/ovpn-ping.log" 2>&1 || SESSION_OK=no
      else SESSION_OK=no; fi
      stop ovpn-cli; stop ovpn-srv ;;
    wireguard) # wireguard-go (userspace) between client and web host, pings through it
      command -v wireguard-go >/dev/null && command -v wg >/dev/null || { SESSION_OK=skip; return; }
      local k1 k2
      k1=$(wg genkey); k2=$(wg genkey)
      bg wg-srv nsx $NS_W env WG_PROCESS_FOREGROUND=1 wireguard-go -f ${P}wgs
      bg wg-cli nsx $NS_C env WG_PROCESS_FOREGROUND=1 wireguard-go -f ${P}wgc
      wait_for 10 nsx $NS_W ip link show ${P}wgs && wait_for 10 nsx $NS_C ip link show ${P}wgc || { SESSION_OK=no; stop wg-srv; stop wg-cli; return; }
      nsx $NS_W wg set ${P}wgs private-key <(echo "$k1") listen-port 51820 peer "$(echo "$k2" | wg pubkey)" allowed-ips 10.98.0.2/32
      nsx $NS_C wg set ${P}wgc private-key <(echo "$k2") peer "$(echo "$k1" | wg pubkey)" allowed-ips 10.98.0.1/32 endpoint $W_IP:51820 persistent-keepalive 2
      nsx $NS_W ip addr add 10.98.0.1/24 dev ${P}wgs; nsx $NS_W ip link set ${P}wgs up
      nsx $NS_C ip addr add 10.98.0.2/24 dev ${P}wgc; nsx $NS_C ip link set ${P}wgc up
      nsx $NS_C ping -c 5 -i 0.5 -W 2 10.98.0.1 >"$RUN/logs/wg-ping.log" 2>&1 || SESSION_OK=no
      stop wg-cli; stop wg-srv ;;
    https-retry) # a client retrying a failing HTTPS site: a 502 page, then a closed port
      for _ in 1 2 3 4; do nsx $NS_C curl -sk --max-time 10 -o /dev/null https://$W_IP/fail; sleep 1; done
      nsx $NS_C curl -sk --max-time 20 --retry 3 --retry-delay 1 --retry-connrefused -o /dev/null https://$W_IP:4443/ ;;
    bump-error-page) # curl through the intercepting proxy, answered by squid's own 403 page each time
      for _ in 1 2 3 4; do nsx $NS_C curl -sk --max-time 10 -x http://$R1_IP:3129 -o /dev/null https://$W_IP/blocked; sleep 0.5; done ;;
    poller-15s) # an API poller reconnecting every 15 s; TLS without ALPN or tickets, and a
      # 2-KB request answered by ~1 KB: sizes and a ClientHello like SoftEther's connect phase
      nsx $NS_C python3 - "$W_IP" <<'PY' || SESSION_OK=no
import socket, ssl, sys, time
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
ctx.options |= ssl.OP_NO_TICKET
ctx.set_ciphers("ALL:@SECLEVEL=0")
req = ("GET /p700.bin HTTP/1.1\r\nHost: %s\r\nCookie: s=%s\r\nConnection: close\r\n\r\n" % (sys.argv[1], "c" * 1900)).encode()
for i in range(3):
    if i:
        time.sleep(15)
    with ctx.wrap_socket(socket.create_connection((sys.argv[1], 443), timeout=10)) as s:
        s.sendall(req)
        while s.recv(65536):
            pass
PY
      ;;
    api-poller) # one keep-alive connection polling every 5 s for 45 s; TLS without ALPN or
      # tickets, its first two requests (2-KB and 3-KB cookies) answered by ~1 KB and ~3 KB: one
      # connection with the connect phase's sizes and SoftEther's liveness (both sides every
      # 10.5 s or sooner for 30 s), which alone raised a session alert before the liveness
      # needed SoftEther's own bytes
      nsx $NS_C python3 - "$W_IP" <<'PY' || SESSION_OK=no
import os, socket, ssl, sys, time
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
ctx.options |= ssl.OP_NO_TICKET
ctx.set_ciphers("ALL:@SECLEVEL=0")
s = ctx.wrap_socket(socket.create_connection((sys.argv[1], 443), timeout=10))
buf = b""
def get(path, cookie):
    global buf
    s.sendall(("GET %s HTTP/1.1\r\nHost: %s\r\nCookie: s=%s\r\n\r\n" % (path, sys.argv[1], cookie)).encode())
    while b"\r\n\r\n" not in buf:
        buf += s.recv(65536)
    head, buf = buf.split(b"\r\n\r\n", 1)
    n = int([l.split(b":")[1] for l in head.split(b"\r\n") if l.lower().startswith(b"content-length:")][0])
    while len(buf) < n:
        buf += s.recv(65536)
    buf = buf[n:]
get("/p700.bin", "a" * 1900)
get("/p3000.bin", "b" * 3000)
end = time.time() + 45
while time.time() < end:
    time.sleep(5)
    get("/p700.bin", os.urandom(40).hex())
s.close()
PY
      ;;
    curl-pairs) # curl (ALPN http/1.1) fetching two small files per run over one connection, the
      # first request with a 1.7-2.6-KB cookie, the second with 0.4-0.9 KB, then closing: four
      # messages in the sizes of SoftEther's watermark, hello, additional_connect and answer,
      # repeated four times 15 s apart with other sizes; a connection-attempt series (8700011)
      # before attempts needed a ClientHello without ALPN
      local i
      for i in 1 2 3 4; do
        [ "$i" -gt 1 ] && sleep 15
        curl_pair https://$W_IP $((1700 + RANDOM % 900)) p700.bin $((400 + RANDOM % 500)) || SESSION_OK=no
      done ;;
    gnutls-pairs) # pairs on GnuTLS (no ALPN, no session ticket: what SoftEther's client never
      # offers either). The build before this mode raised 8700001 on such a pair; GnuTLS orders
      # its ClientHello extensions as OpenSSL never does
      pairs gnutls_pair ;;
    sclient-pairs) # pairs on OpenSSL's s_client -no_ticket: SoftEther's own ClientHello profile
      # (OpenSSL's extension order, no ALPN, no session ticket). The build before this mode
      # raised 8700001 on it: the server answering alike now makes the openings alike
      pairs sclient_pair ;;
    curl-via-proxy) for _ in 1 2 3; do nsx $NS_C curl -sk --max-time 10 -x http://$R1_IP:3128 -o /dev/null https://$W_IP/index.html || SESSION_OK=no; done ;;
    curl-via-tinyproxy) # the proxies of the tinyproxy-auth and socks5-auth modes, with credentials
      for _ in 1 2 3; do nsx $NS_C curl -sk --max-time 10 -x http://$PROXY_USER:$PROXY_PW@$R1_IP:8888 -o /dev/null https://$W_IP/index.html || SESSION_OK=no; done ;;
    curl-via-socks5-auth)
      for _ in 1 2 3; do nsx $NS_C curl -sk --max-time 10 -x socks5://$PROXY_USER:$PROXY_PW@$R1_IP:1081 -o /dev/null https://$W_IP/index.html || SESSION_OK=no; done ;;
    wss-feeds) # four long-lived feeds over TLS from one client to one server, without ALPN or
      # tickets (the ClientHello SoftEther's client shows): the client sends small random-sized
      # messages every 0.5-8 s, the server pushes some every 3 s on average and acknowledges
      # each message, both on timers of their own, as WebSocket feeds and chats do
      wss_feeds_py >"$RUN/wss-feeds.py"
      bg wss-feeds nsx $NS_W python3 "$RUN/wss-feeds.py" server "$W_IP" "$RUN/cert.pem" "$RUN/key.pem"
      sleep 0.5
      nsx $NS_C python3 "$RUN/wss-feeds.py" client "$W_IP" "${LAB_WSS_SECONDS:-90}" || SESSION_OK=no
      stop wss-feeds ;;
  esac
  [ "$base" != "$1" ] && path_reset "$1"
  sleep 1
}

# chat_py: the ssh-chat mode's server (on the web host, 127.0.0.1:7000) and client: each
# side sends messages of random sizes at random times and reads and drops the other's.
chat_py() {
  cat <<'PY'
import os, random, socket, sys, threading, time

def talk(c, seconds):
    end = time.time() + seconds
    def drain():
        try:
            while c.recv(65536):
                pass
        except OSError:
            pass
    threading.Thread(target=drain, daemon=True).start()
    while time.time() < end:
        time.sleep(min(random.expovariate(0.5), 10))
        try:
            c.sendall(os.urandom(random.randint(40, 600)))
        except OSError:
            return

if sys.argv[1] == "server":
    l = socket.create_server(("127.0.0.1", 7000))
    while True:
        c, _ = l.accept()
        threading.Thread(target=talk, args=(c, 3600), daemon=True).start()
else:
    for _ in range(50):
        try:
            c = socket.create_connection(("127.0.0.1", 17000))
            break
        except OSError:
            time.sleep(0.1)
    talk(c, float(sys.argv[2]))
    c.close()
PY
}

# wss_feeds_py: the wss-feeds mode's server and client (python3, standard library).
wss_feeds_py() {
  cat <<'PY'
import os, random, socket, ssl, sys, threading, time

PORT = 8443

def serve(c):
    c.settimeout(0.25)
    push = time.time() + random.uniform(0.5, 4)
    while True:
        now = time.time()
        try:
            if now >= push:
                c.sendall(os.urandom(random.randint(8, 900)))
                push = now + min(15.0, max(0.2, random.expovariate(1 / 3.0)))
            d = c.recv(65536)
        except socket.timeout:
            continue
        except OSError:
            return
        if not d:
            return
        c.sendall(b'{"ack":%d}' % len(d))

def server(ip, cert, key):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    ls = socket.create_server((ip, PORT))
    while True:
        c, _ = ls.accept()
        try:
            c = ctx.wrap_socket(c, server_side=True)
        except OSError:
            continue
        threading.Thread(target=serve, args=(c,), daemon=True).start()

def feed(ip, seconds, ok):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    ctx.options |= ssl.OP_NO_TICKET
    for _ in range(50):  # the server may still be starting
        try:
            raw = socket.create_connection((ip, PORT), timeout=10)
            break
        except OSError:
            time.sleep(0.1)
    else:
        raw = socket.create_connection((ip, PORT), timeout=10)
    s = ctx.wrap_socket(raw)
    s.settimeout(0.25)
    end, send = time.time() + seconds, time.time() + random.uniform(0.2, 2)
    while time.time() < end:
        if time.time() >= send:
            n = random.randint(30, 430) if random.random() < 0.6 else random.randint(8, 1200)
            s.sendall(os.urandom(n))
            send = time.time() + random.uniform(0.5, 8)
        try:
            s.recv(65536)
        except socket.timeout:
            pass
    s.close()
    ok.append(True)

if sys.argv[1] == "server":
    server(*sys.argv[2:5])
else:
    ok, ts = [], []
    for i in range(4):
        t = threading.Thread(target=feed, args=(sys.argv[2], float(sys.argv[3]) - 1.3 * i, ok))
        t.start()
        ts.append(t)
        time.sleep(1.3)
    for t in ts:
        t.join()
    sys.exit(0 if len(ok) == 4 else 1)
PY
}

# endpoint MODE: where the session's connection goes, as seen on the tap (sw-r1)
endpoint() {
  EP_PROTO=tcp EP_IP=$S_IP EP_PORT=443 EP_CIP=$C_IP
  case $1 in
    ssl-bump) EP_IP=$R1_IP EP_PORT=3129 ;;
    ssl-bump-server-leg) EP_CIP=$R2_IP ;; # squid's own connection to the server
    proxy-unreachable) EP_IP=$R1_IP EP_PORT=3128 ;;
    direct-5555) EP_PORT=5555 ;;
    direct-992) EP_PORT=992 ;;
    http-proxy | one-tcp-proxy | lossy-http-proxy) EP_IP=$R1_IP EP_PORT=3128 ;;
    socks5 | socks4) EP_IP=$R1_IP EP_PORT=1080 ;;
    tinyproxy-auth) EP_IP=$R1_IP EP_PORT=8888 ;;
    ipv6) EP_IP=$S6_IP EP_CIP=$C6_IP ;;
    socks5-auth) EP_IP=$R1_IP EP_PORT=1081 ;;
    ssh-forward) EP_IP=$W_IP EP_PORT=22 ;;
    vpn-over-icmp) EP_PROTO=icmp EP_PORT=0 ;;
    vpn-over-dns) EP_PROTO=udp EP_PORT=53 ;;
  esac
}
first_packet() { # epoch of the session's first packet in the mode's tap capture
  local f
  case $EP_PROTO in
    tcp) f="tcp and dst host $EP_IP and dst port $EP_PORT" ;; # the client's SYN
    udp) f="udp and host $EP_IP and port $EP_PORT" ;;
    *) f="icmp and host $EP_IP" ;;
  esac
  timeout 20 tcpdump -r "$RUN/cap/$1.pcap" -tt -nn -c 1 "host $EP_CIP and $f" 2>/dev/null | awk '{print $1; exit}'
}

tcp_conns() { # the number of TCP connections the client opened to the session's endpoint (its SYNs)
  [ "$EP_PROTO" = tcp ] || return 0
  local syn="tcp[tcpflags] & (tcp-syn|tcp-ack) == tcp-syn"
  case $EP_IP in *:*) syn="ip6[6] == 6 and ip6[53] & 0x12 == 0x02" ;; esac # BPF reads no TCP header behind IPv6
  timeout 20 tcpdump -r "$RUN/cap/$1.pcap" -nn \
    "src host $EP_CIP and dst host $EP_IP and tcp dst port $EP_PORT and $syn" 2>/dev/null | wc -l
}

# check MODE EXPECTED: read the mode's EVE file, print a table row, return 1 on a miss
check() {
  endpoint "$1"
  python3 - "$RUN/eve/$1.json" "$2" "$START" "$1" "$SESSION_OK" "${VPN_NOTE:-}" \
    "$EP_CIP" "$EP_IP" "$EP_PORT" "$EP_PROTO" "$(first_packet "$1")" "$(tcp_conns "$1")" <<'EOF'
import datetime, ipaddress, json, sys
path, expect, start, mode, ok, note, cip, eip, eport, eproto, first, conns = sys.argv[1:13]
expect = expect == "yes"
t0 = float(first) if first else float(start)
alerts = []
try:
    for line in open(path):
        try:
            ev = json.loads(line)
        except ValueError:
            continue
        if ev.get("event_type") == "alert" and "SoftEther" in ev.get("alert", {}).get("signature", ""):
            alerts.append(ev)
except FileNotFoundError:
    pass
def ours(ev):  # names the session's client and server/proxy (and for TCP the service port)
    ip = lambda s: ipaddress.ip_address(s) if s else None  # EVE writes IPv6 in full
    a = {(ip(ev.get("src_ip")), str(ev.get("src_port", ""))), (ip(ev.get("dest_ip")), str(ev.get("dest_port", "")))}
    if {x[0] for x in a} != {ip(cip), ip(eip)}:
        return False
    if str(ev.get("proto", "")).upper() == "TCP" and eproto == "tcp":
        return (ip(eip), eport) in a
    return True
def ts(ev):
    return datetime.datetime.strptime(ev["timestamp"], "%Y-%m-%dT%H:%M:%S.%f%z").timestamp()
hits = [e for e in alerts if ours(e)]
other = len(alerts) - len(hits)
if mode == "admin":  # the admin session itself, not the R-UDP probes around it
    hits = [e for e in hits if "administration" in e["alert"]["signature"]]
if mode in ("ssl-bump", "ssl-bump-server-leg", "login-refused", "proxy-unreachable"):
    hits = [e for e in hits if "attempts" in e["alert"]["signature"]]
if mode == "cascade":  # told apart from a client session
    hits = [e for e in hits if "cascade" in e["alert"]["signature"]]
hit = min(hits, key=ts) if hits else None
notes = []
if ok == "skip":
    notes.append("skipped: tool not installed")
elif ok != "yes":
    notes.append("session/traffic FAILED")
if note:
    notes.append(note)
if expect and conns.strip():
    notes.append("%s TCP connection(s)" % conns.strip())
if mode.startswith("one-tcp") and conns.strip() != "1":  # the mode exists to test a session on one connection
    ok = "no"
    notes.append("expected exactly one TCP connection")
if other:
    notes.append("%d SoftEther alert(s) on other endpoints" % other)
if not first and expect:
    notes.append("no session packet on the tap; ttd from connect time")
ttd = "%.2f" % (ts(hit) - t0) if hit else ""
if expect:
    detected = "yes" if hit else "no"
    good = bool(hit) and ok == "yes"
    sig = hit["alert"]["signature"] if hit else ""
else:
    detected = "yes" if alerts else "no"
    good = not alerts and ok in ("yes", "skip")
    sig = alerts[0]["alert"]["signature"] if alerts else ""
res = "skip" if ok == "skip" else ("PASS" if good else "FAIL")
print("| %s | %s | %s | %s | %s | %s | %s |" % (mode, "SoftEther" if expect else "none", detected, sig, ttd, res, "; ".join(notes)))
sys.exit(0 if good else 1)
EOF
}

cascade() { # a second SoftEther server on the client host links its hub to the server's (cascade, site-to-site)
  VPN_NOTE="" SESSION_OK=yes
  se_instance vpnserver "$RUN/edge"
  bg edge se_run $NS_C "$RUN/edge" "$RUN/edge/bin/vpnserver" start --foreground
  wait_for 40 listening $NS_C 5555 || { log "cascade: edge server did not listen"; SESSION_OK=no; stop edge; return; }
  sleep 2
  vpncmd $NS_C 127.0.0.1:5555 /SERVER /CMD ServerPasswordSet $ADMINPW >"$RUN/logs/edge-pw.log" 2>&1
  printf '%s\n' "HubCreate EDGE /PASSWORD:$USERPW" "Hub EDGE" \
    "CascadeCreate uplink /SERVER:$S_IP:443 /HUB:$HUB /USERNAME:user1" \
    "CascadePasswordSet uplink /PASSWORD:$USERPW /TYPE:standard" >"$RUN/edge-setup.txt"
  vpncmd $NS_C 127.0.0.1:5555 /SERVER /PASSWORD:$ADMINPW /IN:"$RUN/edge-setup.txt" >"$RUN/logs/edge-setup.log" 2>&1
  # The edge server is administered from the far side first, across the tap:
  # that is what lets the wire say its later session is a cascade.
  vpncmd $NS_S $C_IP:443 /SERVER /PASSWORD:$ADMINPW /CMD ServerInfoGet >"$RUN/logs/edge-remote-admin.log" 2>&1 ||
    { log "cascade: remote admin of the edge server failed"; SESSION_OK=no; }
  sleep 1
  START=$(date +%s.%N)
  edgecmd CascadeOnline uplink >>"$RUN/logs/edge-setup.log" 2>&1
  if wait_for 30 edge_linked; then
    sleep 6 # the linked session idles: keep-alives only
  else
    log "cascade: link did not come up"; SESSION_OK=no
  fi
  edgecmd CascadeStatusGet uplink >"$RUN/logs/edge-status.log" 2>&1
  stop edge
}
edgecmd() { vpncmd $NS_C 127.0.0.1:5555 /SERVER /PASSWORD:$ADMINPW /ADMINHUB:EDGE /CMD "$@"; }
edge_linked() { edgecmd CascadeStatusGet uplink | grep -qi established; }

summarize() { # summarize REPEAT < rows: one row per mode; with repeats, detections k/N and the median time
  python3 -c '
import statistics, sys
rep = int(sys.argv[1])
rows, order = {}, []
for line in sys.stdin:
    c = [x.strip() for x in line.strip().strip("|").split("|")]
    if len(c) < 7:
        continue
    if c[0] not in rows:
        order.append(c[0]); rows[c[0]] = []
    rows[c[0]].append(c)
print("| mode | expected | detected | signature | time to detect (s)%s | result | notes |" % (" (median)" if rep > 1 else ""))
print("|---|---|---|---|---|---|---|")
for m in order:
    rs = rows[m]
    if len(rs) == 1:
        print("| " + " | ".join(rs[0][:7]) + " |"); continue
    det = sum(r[2] == "yes" for r in rs)
    ttd = [float(r[4]) for r in rs if r[4]]
    sigs = sorted({r[3] for r in rs if r[3]})
    res = "PASS" if all(r[5] == "PASS" for r in rs) else "FAIL (%d/%d)" % (sum(r[5] != "PASS" for r in rs), len(rs))
    notes = "; ".join(sorted({r[6] for r in rs if r[6]}))
    print("| %s | %s | %d/%d | %s | %s | %s | %s |" % (m, rs[0][1], det, len(rs), " / ".join(sigs),
        "%.2f" % statistics.median(ttd) if ttd else "", res, notes))
' "$1"
}

mode_start() { # tcpdump and sewatch on the router's client-side interface
  rm -f "$RUN/eve/$1.json" "$RUN/cap/$1.pcap"
  bg tcpdump nsx $NS_R tcpdump -i sw-r1 -s 0 -U -n -w "$RUN/cap/$1.pcap"
  wait_for 10 grep -q "listening on" "$RUN/logs/tcpdump.log"
  bg sewatch nsx $NS_R "$SEWATCH" -i sw-r1 -o file:"$RUN/eve/$1.json" --log-level warn
  if [ "$1" = ssl-bump ]; then # the proxy's leg to the server, too
    rm -f "$RUN/eve/$1-server-leg.json" "$RUN/cap/$1-server-leg.pcap"
    bg tcpdump2 nsx $NS_R tcpdump -i sw-r2 -s 0 -U -n -w "$RUN/cap/$1-server-leg.pcap"
    bg sewatch2 nsx $NS_R "$SEWATCH" -i sw-r2 -o file:"$RUN/eve/$1-server-leg.json" --log-level warn
  fi
  # wait until sewatch holds its packet socket (at most 5 s)
  wait_for 5 sh -c "ip netns exec $NS_R ss -A packet -p 2>/dev/null | grep -q sewatch" || true
  sleep 0.5
}
mode_stop() {
  sleep 1
  stop sewatch INT
  stop tcpdump INT
  stop sewatch2 INT
  stop tcpdump2 INT
}

admin() { # vpncmd remote administration of the server across the tap, no VPN session
  START=$(date +%s.%N) VPN_NOTE=""
  printf 'ServerInfoGet\nHubList\nListenerList\n' >"$RUN/admin.txt"
  vpncmd $NS_C $S_IP:443 /SERVER /PASSWORD:$ADMINPW /IN:"$RUN/admin.txt" >"$RUN/logs/admin.log" 2>&1 && SESSION_OK=yes || SESSION_OK=no
}

run_mode() { # run_mode MODE EXPECTED
  local rc=0
  mode_start "$1"
  case $1 in
    admin | cascade) "$1" ;;
    ssl-bump | login-refused | proxy-unreachable) attempts "$1" ;;
    *) if [ "$2" = yes ]; then session "$1"; else negative "$1"; fi ;;
  esac
  mode_stop
  check "$1" "$2" >>"$RESULTS.rows" || rc=1
  [ "$1" = ssl-bump ] && { check ssl-bump-server-leg "$2" >>"$RESULTS.rows" || rc=1; }
  return ${rc:-0}
}

run() {
  [ -x "$SEWATCH" ] || { log "no sewatch binary at $SEWATCH (set SEWATCH)"; return 1; }
  setup || return 1
  local modes=${*:-${LAB_MODES:-$POSITIVE $NEGATIVE}} m fail=0 t0=$SECONDS
  modes=${modes//,/ }
  : >"$RESULTS.rows"
  local rep=${LAB_REPEAT:-1} _ all=""
  for m in $modes; do for _ in $(seq 1 "$rep"); do all="$all $m"; done; done
  for m in $all; do
    local want=no
    case " $POSITIVE " in *" $m "*) want=yes ;; esac
    log "mode $m (expect SoftEther: $want)"
    if ! run_mode "$m" $want; then
      case " ${LAB_REQUIRE:-$DEFAULT_REQUIRE} " in *" $m "*) fail=1 ;; esac
    fi
  done
  {
    summarize "$rep" <"$RESULTS.rows"
    echo
    if [ "$rep" -gt 1 ]; then echo "Lab run: $((SECONDS - t0)) s, $(date -u +%F), each mode $rep times."
    else echo "Lab run: $((SECONDS - t0)) s, $(date -u +%F)."; fi
  } >"$RESULTS"
  cat "$RESULTS"
  return $fail
}

case ${1:-} in
  deps) deps ;;
  setup) setup ;;
  teardown) teardown ;;
  run) shift; run "$@" ;;
  all) shift; run "$@"; rc=$?; teardown; exit $rc ;;
  *) echo "usage: $0 deps|setup|run [MODE...]|all|teardown" >&2; exit 2 ;;
esac
