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
//
// Each table gives an extension's place in one order (0: that order never
// has it). They are read once per extension of a ClientHello, so once per
// TLS flow, and a map read allocates nothing.
var (
	openSSLModern = map[uint16]uint8{
		0xff01: 1,  // renegotiation_info
		0:      2,  // server_name
		1:      3,  // max_fragment_length
		28:     4,  // record_size_limit
		12:     5,  // srp
		11:     6,  // ec_point_formats
		10:     7,  // supported_groups
		35:     8,  // session_ticket
		5:      9,  // status_request
		13172:  10, // next_protocol_negotiation
		16:     11, // application_layer_protocol_negotiation
		14:     12, // use_srtp
		22:     13, // encrypt_then_mac
		18:     14, // signed_certificate_timestamp
		23:     15, // extended_master_secret
		50:     16, // signature_algorithms_cert
		49:     17, // post_handshake_auth
		19:     18, // client_certificate_type
		20:     19, // server_certificate_type
		13:     20, // signature_algorithms
		43:     21, // supported_versions
		45:     22, // psk_key_exchange_modes
		51:     23, // key_share
		44:     24, // cookie
		0xfde8: 25, // cryptopro_bug
		27:     26, // compress_certificate
		42:     27, // early_data
		47:     28, // certificate_authorities
		21:     29, // padding
		41:     30, // pre_shared_key
	}
	openSSLLegacy = map[uint16]uint8{
		0xff01: 1,  // renegotiation_info
		0:      2,  // server_name
		12:     3,  // srp
		11:     4,  // ec_point_formats
		10:     5,  // elliptic_curves
		35:     6,  // session_ticket
		13:     7,  // signature_algorithms
		5:      8,  // status_request
		15:     9,  // heartbeat
		13172:  10, // next_protocol_negotiation
		16:     11, // application_layer_protocol_negotiation
		14:     12, // use_srtp
		22:     13, // encrypt_then_mac
		18:     14, // signed_certificate_timestamp
		23:     15, // extended_master_secret
		21:     16, // padding
	}
)

// opensslOrder follows a ClientHello's extension types one at a time and
// says whether they are in one of OpenSSL's orders so far.
type opensslOrder struct {
	modern, legacy uint8 // place of the last type in each order; 0xff: broken
	n              int
}

func (o *opensslOrder) add(t uint16) {
	o.n++
	o.modern = next(o.modern, openSSLModern[t])
	o.legacy = next(o.legacy, openSSLLegacy[t])
}

func next(last, place uint8) uint8 {
	if last == 0xff || place == 0 || place <= last {
		return 0xff
	}
	return place
}

// ok: at least one extension, and all of them in one of the orders.
func (o *opensslOrder) ok() bool { return o.n > 0 && (o.modern != 0xff || o.legacy != 0xff) }

// OpenSSLOrder reports whether the hello's extensions (at least one) are
// all extensions OpenSSL's client writes, in the order one of its
// versions writes them.
func (c *ClientHello) OpenSSLOrder() bool {
	var o opensslOrder
	for _, t := range c.Extensions {
		o.add(t)
	}
	return o.ok()
}
