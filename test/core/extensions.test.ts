/**
 * The Sec-WebSocket-Extensions grammar (RFC 6455 §9.1) and the permessage-deflate
 * negotiation matrix of RFC 7692 §7.1, pure: header strings in, agreed parameters out.
 */
import test from 'ava';
import { acceptDeflate, checkDeflateResponse, DeflateNegotiation, deflateOffer, DeflateParams, parseExtensions } from '../../src';

const DEFAULTS: DeflateParams = {
  serverNoContextTakeover: false,
  clientNoContextTakeover: false,
  serverMaxWindowBits: 15,
  clientMaxWindowBits: 15
};
const params = (p: Partial<DeflateParams>): DeflateParams => ({ ...DEFAULTS, ...p });

// ---------------------------------------------------------------------------------------
// parseExtensions

test('parseExtensions: one extension, several, parameters with and without values', (t) => {
  t.deepEqual(parseExtensions('permessage-deflate'), [{ name: 'permessage-deflate', params: [] }]);
  t.deepEqual(parseExtensions('permessage-deflate; client_max_window_bits, permessage-deflate; server_max_window_bits=10, foo'), [
    { name: 'permessage-deflate', params: [['client_max_window_bits', true]] },
    { name: 'permessage-deflate', params: [['server_max_window_bits', '10']] },
    { name: 'foo', params: [] }
  ]);
  t.deepEqual(parseExtensions('x-ext;a=1;b;c=token-value'), [
    { name: 'x-ext', params: [['a', '1'], ['b', true], ['c', 'token-value']] }
  ]);
});

test('parseExtensions: names are lower-cased, values kept as written', (t) => {
  t.deepEqual(parseExtensions('PerMessage-Deflate; Server_No_Context_Takeover; X=AbC'), [
    { name: 'permessage-deflate', params: [['server_no_context_takeover', true], ['x', 'AbC']] }
  ]);
});

test('parseExtensions: quoted values are unquoted (escapes too) and must be tokens', (t) => {
  t.deepEqual(parseExtensions('permessage-deflate; server_max_window_bits="10"'), [
    { name: 'permessage-deflate', params: [['server_max_window_bits', '10']] }
  ]);
  t.deepEqual(parseExtensions('e; a="x\\yz"'), [{ name: 'e', params: [['a', 'xyz']] }]);
  // §9.1: a quoted value must be a token once unquoted.
  for (const bad of ['e; a=""', 'e; a="two words"', 'e; a="x,y"', 'e; a="x;y"', 'e; a="unterminated', 'e; a="x\\']) {
    t.throws(() => parseExtensions(bad), { instanceOf: SyntaxError }, bad);
  }
});

test('parseExtensions: spaces and tabs around every separator', (t) => {
  const want = [
    { name: 'a', params: [['p', '1'], ['q', true]] },
    { name: 'b', params: [] }
  ];
  t.deepEqual(parseExtensions('a;p=1;q,b'), want);
  t.deepEqual(parseExtensions('  a \t; p = 1 ;\tq ,  b  '), want);
  t.deepEqual(parseExtensions('a ; p = "1" ; q , b'), want);
});

test('parseExtensions: empty list elements are skipped (RFC 7230 §7 #rule)', (t) => {
  t.deepEqual(parseExtensions(''), []);
  t.deepEqual(parseExtensions(' , ,\t,'), []);
  t.deepEqual(parseExtensions(',a,,b,'), [
    { name: 'a', params: [] },
    { name: 'b', params: [] }
  ]);
});

test('parseExtensions: malformed values throw SyntaxError', (t) => {
  const bad = [
    ';',
    'a;',
    'a;;b',
    'a; =1',
    'a; p=',
    'a; p==1',
    'a b',
    'a; p=1 2',
    'a; p q',
    '"a"',
    'a/b',
    'a; p=x/y',
    'a; p=@',
    'a=1',
    'a; p="1"x'
  ];
  for (const value of bad) {
    const err = t.throws(() => parseExtensions(value), { instanceOf: SyntaxError }, value);
    t.true(err?.message.includes('Sec-WebSocket-Extensions'), value);
  }
});

// ---------------------------------------------------------------------------------------
// deflateOffer

test('deflateOffer: client_max_window_bits always (so the server may limit us), the rest when asked', (t) => {
  t.is(deflateOffer({}), 'permessage-deflate; client_max_window_bits');
  t.is(
    deflateOffer({ serverNoContextTakeover: true, clientNoContextTakeover: true, serverMaxWindowBits: 10, clientMaxWindowBits: 9 }),
    'permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=10; client_max_window_bits=9'
  );
  for (const bits of [7, 16, 9.5, NaN]) {
    t.throws(() => deflateOffer({ serverMaxWindowBits: bits }), { instanceOf: RangeError });
    t.throws(() => deflateOffer({ clientMaxWindowBits: bits }), { instanceOf: RangeError });
  }
  // What we offer is what the server side accepts, parameter for parameter.
  const offer = deflateOffer({ serverNoContextTakeover: true, serverMaxWindowBits: 11, clientMaxWindowBits: 12 });
  t.deepEqual(acceptDeflate(offer, {})?.params, params({ serverNoContextTakeover: true, serverMaxWindowBits: 11, clientMaxWindowBits: 12 }));
});

// ---------------------------------------------------------------------------------------
// acceptDeflate: the server's side

test('acceptDeflate: no header, no permessage-deflate offer, or an empty one: no compression', (t) => {
  t.is(acceptDeflate(undefined, {}), null);
  t.is(acceptDeflate('', {}), null);
  t.is(acceptDeflate('x-webkit-deflate-frame, foo; bar=1', {}), null);
});

test('acceptDeflate: a header that does not parse throws SyntaxError (the server answers 400)', (t) => {
  t.throws(() => acceptDeflate('permessage-deflate;', {}), { instanceOf: SyntaxError });
  t.throws(() => acceptDeflate('permessage-deflate; server_max_window_bits="1 0"', {}), { instanceOf: SyntaxError });
});

test('acceptDeflate: a bare offer against default options', (t) => {
  t.deepEqual(acceptDeflate('permessage-deflate', {}), { response: 'permessage-deflate', params: DEFAULTS });
  t.deepEqual(acceptDeflate('permessage-deflate; client_max_window_bits', {}), {
    response: 'permessage-deflate',
    params: DEFAULTS
  });
});

// Each parameter offered or not, against each server option: [offer params, options, response, params].
const MATRIX: Array<[string, DeflateNegotiation, string, Partial<DeflateParams>]> = [
  // server_no_context_takeover (§7.1.1.1): accepted by echoing it; the server may add it on its own.
  ['; server_no_context_takeover', {}, '; server_no_context_takeover', { serverNoContextTakeover: true }],
  ['', { serverNoContextTakeover: true }, '; server_no_context_takeover', { serverNoContextTakeover: true }],
  ['; server_no_context_takeover', { serverNoContextTakeover: true }, '; server_no_context_takeover', { serverNoContextTakeover: true }],
  // client_no_context_takeover (§7.1.1.2): the client's hint, or the server's demand.
  ['; client_no_context_takeover', {}, '; client_no_context_takeover', { clientNoContextTakeover: true }],
  ['', { clientNoContextTakeover: true }, '; client_no_context_takeover', { clientNoContextTakeover: true }],
  // server_max_window_bits (§7.1.2.1): answered with the same or a smaller value; the server
  // may add it when it was not offered.
  ['; server_max_window_bits=10', {}, '; server_max_window_bits=10', { serverMaxWindowBits: 10 }],
  ['; server_max_window_bits=15', {}, '; server_max_window_bits=15', {}],
  ['; server_max_window_bits=12', { serverMaxWindowBits: 10 }, '; server_max_window_bits=10', { serverMaxWindowBits: 10 }],
  ['; server_max_window_bits=9', { serverMaxWindowBits: 12 }, '; server_max_window_bits=9', { serverMaxWindowBits: 9 }],
  ['', { serverMaxWindowBits: 11 }, '; server_max_window_bits=11', { serverMaxWindowBits: 11 }],
  ['', { serverMaxWindowBits: 15 }, '', {}],
  // client_max_window_bits (§7.1.2.2): answered only when offered, with at most the offered value.
  ['; client_max_window_bits', { clientMaxWindowBits: 10 }, '; client_max_window_bits=10', { clientMaxWindowBits: 10 }],
  ['; client_max_window_bits=12', {}, '; client_max_window_bits=12', { clientMaxWindowBits: 12 }],
  ['; client_max_window_bits=12', { clientMaxWindowBits: 10 }, '; client_max_window_bits=10', { clientMaxWindowBits: 10 }],
  ['; client_max_window_bits=9', { clientMaxWindowBits: 10 }, '; client_max_window_bits=9', { clientMaxWindowBits: 9 }],
  ['; client_max_window_bits=15', {}, '', {}],
  ['; client_max_window_bits', {}, '', {}],
  // Everything at once, in the order the response writes it.
  [
    '; client_max_window_bits=11; server_max_window_bits=13; client_no_context_takeover; server_no_context_takeover',
    { serverMaxWindowBits: 12, clientMaxWindowBits: 14 },
    '; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=12; client_max_window_bits=11',
    { serverNoContextTakeover: true, clientNoContextTakeover: true, serverMaxWindowBits: 12, clientMaxWindowBits: 11 }
  ]
];

test('acceptDeflate: each parameter offered or not against each server option (RFC 7692 §7.1.1-§7.1.2)', (t) => {
  for (const [offer, options, response, agreed] of MATRIX) {
    const got = acceptDeflate(`permessage-deflate${offer}`, options);
    const what = `offer "${offer}" with ${JSON.stringify(options)}`;
    t.deepEqual(got, { response: `permessage-deflate${response}`, params: params(agreed) }, what);
    // And the client accepts what the server answered, agreeing on the same parameters.
    const clientSide = checkDeflateResponse(got!.response, offerOf(offer));
    t.deepEqual(clientSide, params(agreed), `client's view of ${what}`);
  }
});

// The DeflateNegotiation a client would have used to make this offer string.
function offerOf(offer: string): DeflateNegotiation {
  const p = parseExtensions(`permessage-deflate${offer}`)[0]!.params;
  const get = (name: string): string | true | undefined => p.find(([n]) => n === name)?.[1];
  const bits = (v: string | true | undefined): number | undefined => (typeof v === 'string' ? Number(v) : undefined);
  return {
    serverNoContextTakeover: get('server_no_context_takeover') === true,
    clientNoContextTakeover: get('client_no_context_takeover') === true,
    serverMaxWindowBits: bits(get('server_max_window_bits')),
    clientMaxWindowBits: bits(get('client_max_window_bits'))
  };
}

test('acceptDeflate: invalid offers are declined and the next offer is used (RFC 7692 §7.1)', (t) => {
  const invalid = [
    'server_max_window_bits=7',
    'server_max_window_bits=16',
    'server_max_window_bits=08',
    'server_max_window_bits=010',
    'server_max_window_bits=+9',
    'server_max_window_bits=0x9',
    'server_max_window_bits',
    'client_max_window_bits=7',
    'client_max_window_bits=16',
    'client_max_window_bits=08',
    'server_no_context_takeover=1',
    'client_no_context_takeover=true',
    'server_no_context_takeover="x"',
    'unknown_param',
    'x=1',
    'server_no_context_takeover; server_no_context_takeover',
    'client_no_context_takeover; client_no_context_takeover',
    'server_max_window_bits=10; server_max_window_bits=10',
    'client_max_window_bits; client_max_window_bits=10',
    'client_max_window_bits=10; client_max_window_bits=10'
  ];
  for (const bad of invalid) {
    t.is(acceptDeflate(`permessage-deflate; ${bad}`, {}), null, bad);
    // The next offer (a fallback in order of preference) is taken instead.
    t.deepEqual(
      acceptDeflate(`permessage-deflate; ${bad}, permessage-deflate; server_no_context_takeover`, {}),
      { response: 'permessage-deflate; server_no_context_takeover', params: params({ serverNoContextTakeover: true }) },
      `${bad}, then a good one`
    );
  }
  // Other extensions around it are skipped, not fatal.
  t.deepEqual(acceptDeflate('foo; bar, permessage-deflate; x=1, baz, permessage-deflate; server_max_window_bits=9', {}), {
    response: 'permessage-deflate; server_max_window_bits=9',
    params: params({ serverMaxWindowBits: 9 })
  });
});

test('acceptDeflate: a server limiting the client window declines offers without client_max_window_bits', (t) => {
  // §7.1.2.2: the response may not carry client_max_window_bits unless offered, so such an
  // offer cannot be limited: it is declined, and a later offer that allows it is taken.
  t.is(acceptDeflate('permessage-deflate', { clientMaxWindowBits: 12 }), null);
  t.is(acceptDeflate('permessage-deflate; server_max_window_bits=10', { clientMaxWindowBits: 14 }), null);
  t.deepEqual(acceptDeflate('permessage-deflate, permessage-deflate; client_max_window_bits', { clientMaxWindowBits: 12 }), {
    response: 'permessage-deflate; client_max_window_bits=12',
    params: params({ clientMaxWindowBits: 12 })
  });
  // At 15 there is nothing to limit.
  t.deepEqual(acceptDeflate('permessage-deflate', { clientMaxWindowBits: 15 })?.params, DEFAULTS);
});

test('acceptDeflate: the server options are checked (RangeError)', (t) => {
  t.throws(() => acceptDeflate('permessage-deflate', { serverMaxWindowBits: 16 }), { instanceOf: RangeError });
  t.throws(() => acceptDeflate('permessage-deflate', { clientMaxWindowBits: 7 }), { instanceOf: RangeError });
});

// ---------------------------------------------------------------------------------------
// checkDeflateResponse: the client's side

test('checkDeflateResponse: no header or an empty one means no compression', (t) => {
  t.is(checkDeflateResponse(undefined, {}), null);
  t.is(checkDeflateResponse('', {}), null);
  t.is(checkDeflateResponse('  ', {}), null);
  t.is(checkDeflateResponse(undefined, null), null);
});

test('checkDeflateResponse: the parameters in force', (t) => {
  t.deepEqual(checkDeflateResponse('permessage-deflate', {}), DEFAULTS);
  // The server may add server_no_context_takeover, client_no_context_takeover and
  // server_max_window_bits on its own (§7.1.1.1, §7.1.1.2, §7.1.2.1).
  t.deepEqual(
    checkDeflateResponse('permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=9', {}),
    params({ serverNoContextTakeover: true, clientNoContextTakeover: true, serverMaxWindowBits: 9 })
  );
  // client_no_context_takeover offered but not echoed: we still keep our promise.
  t.deepEqual(checkDeflateResponse('permessage-deflate', { clientNoContextTakeover: true }), params({ clientNoContextTakeover: true }));
  // A client_max_window_bits hint with a value binds us even when the server does not answer it.
  t.deepEqual(checkDeflateResponse('permessage-deflate', { clientMaxWindowBits: 11 }), params({ clientMaxWindowBits: 11 }));
  t.deepEqual(checkDeflateResponse('permessage-deflate; client_max_window_bits=10', { clientMaxWindowBits: 11 }), params({ clientMaxWindowBits: 10 }));
  t.deepEqual(checkDeflateResponse('permessage-deflate; client_max_window_bits=9', {}), params({ clientMaxWindowBits: 9 }));
  t.deepEqual(checkDeflateResponse('permessage-deflate; server_max_window_bits=10', { serverMaxWindowBits: 10 }), params({ serverMaxWindowBits: 10 }));
  t.deepEqual(checkDeflateResponse('permessage-deflate; server_max_window_bits="8"', { serverMaxWindowBits: 12 }), params({ serverMaxWindowBits: 8 }));
});

test('checkDeflateResponse: responses a client must fail (RFC 7692 §7.1)', (t) => {
  const cases: Array<[string, DeflateNegotiation | null, RegExp]> = [
    ['permessage-deflate', null, /not offered/],
    ['foo', {}, /extension foo/],
    ['permessage-deflate, foo', {}, /extension foo/],
    ['permessage-deflate, permessage-deflate', {}, /more than once/],
    ['permessage-deflate; server_max_window_bits=11', { serverMaxWindowBits: 10 }, /above the offer/],
    ['permessage-deflate', { serverMaxWindowBits: 10 }, /server_max_window_bits/],
    ['permessage-deflate; client_max_window_bits=12', { clientMaxWindowBits: 11 }, /above the offer/],
    ['permessage-deflate', { serverNoContextTakeover: true }, /server_no_context_takeover/],
    ['permessage-deflate; client_max_window_bits', {}, /client_max_window_bits/],
    ['permessage-deflate; server_max_window_bits', {}, /server_max_window_bits/],
    ['permessage-deflate; server_max_window_bits=7', {}, /server_max_window_bits/],
    ['permessage-deflate; server_max_window_bits=016', {}, /server_max_window_bits/],
    ['permessage-deflate; client_max_window_bits=16', {}, /client_max_window_bits/],
    ['permessage-deflate; server_no_context_takeover=1', {}, /takes no value/],
    ['permessage-deflate; server_no_context_takeover; server_no_context_takeover', {}, /twice/],
    ['permessage-deflate; mystery', {}, /unknown parameter/]
  ];
  for (const [header, offered, message] of cases) {
    t.throws(() => checkDeflateResponse(header, offered), { instanceOf: Error, message }, `${header} for ${JSON.stringify(offered)}`);
  }
  t.throws(() => checkDeflateResponse('permessage-deflate;', {}), { instanceOf: SyntaxError });
});
