package tlshello

// OpenSSL's client writes the ClientHello extensions it sends in one fixed
// order, the order of its table of built-in extensions; which ones it
// sends depends on the version and the application's settings, never
// their order. Other TLS stacks order them their own way: Java and
// SChannel put supported_groups before ec_point_formats, NSS puts
// extended_master_secret near the front, BoringSSL adds GREASE values.
// SoftEther's client is built on OpenSSL (both source trees), so a
// ClientHello whose extensions break OpenSSL's order is not SoftEther's.
//
// Two orders cover the versions SoftEther has been built with:
//   - 1.1.1 to 3.x: ssl/statem/extensions.c, ext_defs (renegotiation_info
//     only when renegotiating; padding immediately before
//     pre_shared_key, which is always last);
//   - 1.0.x and 1.1.0: t1_lib.c, ssl_add_clienthello_tlsext, where
//     signature_algorithms still came before status_request and the
//     heartbeat extension, and encrypt_then_mac and
//     extended_master_secret (1.1.0) after ALPN.

// openSSLPlaces gives an extension's place in each order (0: that order
// never has it). It is read for every extension of every ClientHello, so
// it is a table and a switch, not a map (a map's lookups were 2 % of a
// run on the many-flow mix).
func openSSLPlaces(t uint16) (modern, legacy uint8) {
	if t < uint16(len(openSSLSmall)) {
		p := openSSLSmall[t]
		return p[0], p[1]
	}
	switch t {
	case 13172: // next_protocol_negotiation
		return 10, 10
	case 0xfde8: // cryptopro_bug
		return 25, 0
	case 0xff01: // renegotiation_info
		return 1, 1
	}
	return 0, 0
}

// openSSLSmall: the places of extension types below 64, {1.1.1-3.x,
// 1.0.x-1.1.0}.
var openSSLSmall = [64][2]uint8{
	0:  {2, 2},   // server_name
	1:  {3, 0},   // max_fragment_length
	5:  {9, 8},   // status_request
	10: {7, 5},   // supported_groups (elliptic_curves)
	11: {6, 4},   // ec_point_formats
	12: {5, 3},   // srp
	13: {20, 7},  // signature_algorithms
	14: {12, 12}, // use_srtp
	15: {0, 9},   // heartbeat
	16: {11, 11}, // application_layer_protocol_negotiation
	18: {14, 14}, // signed_certificate_timestamp
	19: {18, 0},  // client_certificate_type
	20: {19, 0},  // server_certificate_type
	21: {29, 16}, // padding
	22: {13, 13}, // encrypt_then_mac
	23: {15, 15}, // extended_master_secret
	27: {26, 0},  // compress_certificate
	28: {4, 0},   // record_size_limit
	35: {8, 6},   // session_ticket
	41: {30, 0},  // pre_shared_key
	42: {27, 0},  // early_data
	43: {21, 0},  // supported_versions
	44: {24, 0},  // cookie
	45: {22, 0},  // psk_key_exchange_modes
	47: {28, 0},  // certificate_authorities
	49: {17, 0},  // post_handshake_auth
	50: {16, 0},  // signature_algorithms_cert
	51: {23, 0},  // key_share
}

// opensslOrder follows a ClientHello's extension types one at a time and
// says whether they are in one of OpenSSL's orders so far. A type neither
// order has is passed over: a later OpenSSL may send an extension these
// tables do not know yet, and a SoftEther built with it must still be
// read. Other stacks give themselves away by the extensions every stack
// sends (the third-party captures' verdicts are the same either way).
type opensslOrder struct {
	modern, legacy uint8 // place of the last known type in each order; 0xff: broken
	n              int   // known types seen
}

func (o *opensslOrder) add(t uint16) {
	m, l := openSSLPlaces(t)
	if m == 0 && l == 0 {
		return
	}
	o.n++
	o.modern = advance(o.modern, m)
	o.legacy = advance(o.legacy, l)
}

// advance is the last place after a type at place: broken (0xff) unless the
// order has the type later than the last one.
func advance(last, place uint8) uint8 {
	if last == 0xff || place == 0 || place <= last {
		return 0xff
	}
	return place
}

// ok: at least one known extension, and all of them in one of the orders.
func (o *opensslOrder) ok() bool { return o.n > 0 && (o.modern != 0xff || o.legacy != 0xff) }

// OpenSSLOrder reports whether the extensions OpenSSL's client writes
// that the hello has (at least one) come in the order one of its versions
// writes them; types OpenSSL never writes are passed over.
func (c *ClientHello) OpenSSLOrder() bool {
	var o opensslOrder
	for _, t := range c.Extensions {
		o.add(t)
	}
	return o.ok()
}
