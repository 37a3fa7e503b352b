// TLS on the API listener ([tls]): what real clients (openssl s_client, curl, an Asio client)
// see — protocols, ALPN, ciphers, SNI, mTLS, plain HTTP on the TLS port, plain and TLS side by
// side — and certificate reloads under live streams. Certificates come from tls_fixtures.sh,
// generated afresh for each run.

#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio/ssl.hpp>
#include <boost/beast/ssl.hpp>
#include <csignal>
#include <filesystem>
#include <fstream>

#include "harness.hpp"
#include "tls_fixtures.hpp"
#include "net/asio.hpp"

namespace nines::test {
namespace {

namespace ssl = boost::asio::ssl;
using net::asio::awaitable;
using net::use_nothrow;

std::string fx(const std::string& name) { return tls_fixture(name); }

struct tool_run {
  int code = -1;
  std::string out;
};
// A command line through /bin/sh with stdin from /dev/null (s_client then ends after the
// handshake).
tool_run shell(const std::string& command) {
  process p({"/bin/sh", "-c", command + " </dev/null"});
  tool_run r;
  r.code = p.wait_exit(milliseconds(30000)).value_or(-1);
  r.out = p.output();
  return r;
}

tool_run s_client(unsigned short port, const std::string& args) {
  return shell("openssl s_client -connect 127.0.0.1:" + std::to_string(port) + " " + args +
               " 2>&1");
}

// The subject the listener presents for `server_name` ("" for none), as s_client prints it.
std::string served_subject(unsigned short port, const std::string& server_name) {
  const auto r = s_client(port, server_name.empty() ? "-noservername"
                                                    : "-servername " + server_name);
  const auto at = r.out.find("subject=");
  return at == std::string::npos ? "" : r.out.substr(at, r.out.find('\n', at) - at);
}

std::string listener_toml(const std::string& upstream, const std::string& tls) {
  return "[tls]\n" + tls + upstreams_toml({upstream});
}
// cert_file and key_file of a fixture; "chain" is the leaf with its intermediate.
std::string pair_toml(const std::string& name) {
  const std::string key = name == "chain" ? "leaf" : name;
  return "cert_file = \"" + fx(name + ".pem") + "\"\nkey_file = \"" + fx(key + ".key") + "\"\n";
}

std::string curl(unsigned short port, const std::string& args, const std::string& body) {
  return "curl -sS --max-time 20 --cacert " + fx("ca.pem") + " " + args +
         " -H 'content-type: application/json' -d '" + body + "' https://localhost:" +
         std::to_string(port) + "/v1/chat/completions 2>&1";
}

TEST(gateway_tls_listener, speaks_tls_1_2_and_1_3_with_alpn_http_1_1_and_nothing_older_or_weaker) {
  auto mock = start_mock();
  auto gw = start_gateway(listener_toml(mock.url(), pair_toml("leaf") + "\n"));
  ASSERT_NE(gw.tls_port, 0);
  EXPECT_EQ(gw.port, 0) << "with [tls] and no tls.listen, gateway.listen speaks TLS only";

  const auto v13 = s_client(gw.tls_port, "-tls1_3 -alpn http/1.1");
  EXPECT_NE(v13.out.find("New, TLSv1.3, Cipher is TLS_"), std::string::npos) << v13.out;
  EXPECT_NE(v13.out.find("ALPN protocol: http/1.1"), std::string::npos) << v13.out;
  const auto v12 = s_client(gw.tls_port, "-tls1_2");
  EXPECT_NE(v12.out.find("New, TLSv1.2, Cipher is ECDHE-ECDSA-AES128-GCM-SHA256"),
            std::string::npos)
      << v12.out;

  const auto v11 = s_client(gw.tls_port, "-tls1_1 -cipher DEFAULT@SECLEVEL=0");
  EXPECT_NE(v11.out.find("alert protocol version"), std::string::npos) << v11.out;
  const auto h2 = s_client(gw.tls_port, "-alpn h2");
  EXPECT_NE(h2.out.find("alert no application protocol"), std::string::npos) << h2.out;
  // CBC without forward secrecy: not offered, whatever the client asks.
  const auto cbc = s_client(gw.tls_port, "-tls1_2 -cipher AES128-SHA");
  EXPECT_NE(cbc.out.find("Cipher is (NONE)"), std::string::npos) << cbc.out;

  EXPECT_TRUE(eventually([&] {
    return metric_value(gw.admin_port, "nines_tls_handshakes_total{result=\"ok\"}") == 2 &&
           metric_value(gw.admin_port,
                        "nines_tls_handshakes_total{result=\"protocol_version\"}") == 1 &&
           metric_value(gw.admin_port,
                        "nines_tls_handshakes_total{result=\"no_application_protocol\"}") == 1 &&
           metric_value(gw.admin_port,
                        "nines_tls_handshakes_total{result=\"no_shared_cipher\"}") == 1;
  })) << http_call(gw.admin_port, "GET", "/metrics").body;
  EXPECT_GT(metric_value(gw.admin_port, "nines_tls_certificate_expiry_seconds"), 29U * 86400);
}

TEST(gateway_tls_listener, curl_verifies_the_chain_and_gets_exact_answers_and_streams) {
  auto mock = start_mock();
  auto gw = start_gateway(listener_toml(mock.url(), pair_toml("chain")));
  const auto body = chat_body("over tls", false);
  const auto plain = shell(curl(gw.tls_port, "", body));
  EXPECT_EQ(plain.code, 0) << plain.out;
  EXPECT_EQ(answer_text(plain.out), expected_answer(body, true)) << plain.out;

  const auto stream_body = chat_body("streamed over tls", true);
  const auto streamed = shell(curl(gw.tls_port, "-N", stream_body));
  EXPECT_EQ(streamed.code, 0) << streamed.out;
  EXPECT_EQ(stream_text(sse_events(streamed.out)), expected_answer(stream_body, true));
  EXPECT_NE(streamed.out.find("data: [DONE]"), std::string::npos);

  // The IP address is in the certificate too.
  const auto by_ip = shell("curl -sS --cacert " + fx("ca.pem") + " https://127.0.0.1:" +
                           std::to_string(gw.tls_port) + "/healthz");
  EXPECT_EQ(by_ip.code, 0) << by_ip.out;
  // Served without its intermediate, the same leaf does not verify.
  auto leaf_only = start_gateway(listener_toml(mock.url(), pair_toml("leaf")));
  const auto broken = shell(curl(leaf_only.tls_port, "", body));
  EXPECT_NE(broken.code, 0);
  EXPECT_NE(broken.out.find("unable to get local issuer certificate"), std::string::npos)
      << broken.out;
}

TEST(gateway_tls_listener, sni_selects_the_certificate_and_unknown_names_get_the_default) {
  auto mock = start_mock();
  auto gw = start_gateway(listener_toml(
      mock.url(), pair_toml("chain") + "[[tls.sni]]\nserver_name = \"other.test\"\n" +
                      pair_toml("other") + "[[tls.sni]]\nserver_name = \"*.wild.test\"\n" +
                      pair_toml("other")));
  EXPECT_NE(served_subject(gw.tls_port, "other.test").find("CN = other.test"), std::string::npos);
  EXPECT_NE(served_subject(gw.tls_port, "OTHER.test").find("CN = other.test"), std::string::npos);
  EXPECT_NE(served_subject(gw.tls_port, "a.wild.test").find("CN = other.test"), std::string::npos);
  // A wildcard covers one label only.
  EXPECT_NE(served_subject(gw.tls_port, "a.b.wild.test").find("CN = localhost"),
            std::string::npos);
  EXPECT_NE(served_subject(gw.tls_port, "unknown.example").find("CN = localhost"),
            std::string::npos);
  EXPECT_NE(served_subject(gw.tls_port, "").find("CN = localhost"), std::string::npos);
}

TEST(gateway_tls_listener, mtls_lets_in_only_clients_with_a_certificate_from_the_client_ca) {
  auto mock = start_mock();
  auto gw = start_gateway(listener_toml(
      mock.url(), pair_toml("chain") + "client_ca_file = \"" + fx("ca.pem") + "\"\n"));
  const auto body = chat_body("mutual", false);
  const auto with_cert = shell(
      curl(gw.tls_port, "--cert " + fx("client.pem") + " --key " + fx("client.key"), body));
  EXPECT_EQ(with_cert.code, 0) << with_cert.out;
  EXPECT_EQ(answer_text(with_cert.out), expected_answer(body, true));

  const auto without = shell(curl(gw.tls_port, "", body));
  EXPECT_NE(without.code, 0) << without.out;
  const auto rogue = shell(
      curl(gw.tls_port, "--cert " + fx("rogue.pem") + " --key " + fx("rogue.key"), body));
  EXPECT_NE(rogue.code, 0) << rogue.out;
  EXPECT_TRUE(eventually([&] {
    return metric_value(gw.admin_port,
                        "nines_tls_handshakes_total{result=\"client_certificate_missing\"}") == 1 &&
           metric_value(gw.admin_port,
                        "nines_tls_handshakes_total{result=\"client_certificate_rejected\"}") == 1;
  })) << http_call(gw.admin_port, "GET", "/metrics").body;
  EXPECT_EQ(mock_stat(mock.port, "requests"), 1U + 1)  // + this stats call
      << "only the client with a certificate got in";
}

TEST(gateway_tls_listener, plain_http_on_the_tls_port_is_told_to_use_https) {
  auto mock = start_mock();
  auto gw = start_gateway(listener_toml(mock.url(), pair_toml("chain")));
  const auto answer = raw_exchange(gw.tls_port, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(answer.rfind("HTTP/1.1 400 Bad Request\r\n", 0), 0U) << answer;
  EXPECT_NE(answer.find("\"code\":\"tls_required\""), std::string::npos) << answer;
  EXPECT_NE(answer.find("\"type\":\"invalid_request_error\""), std::string::npos) << answer;
  EXPECT_EQ(mock_stat(mock.port, "requests"), 0U + 1);  // this stats call
}

TEST(gateway_tls_listener, plain_and_tls_listeners_run_side_by_side) {
  auto mock = start_mock();
  auto gw = start_gateway(listener_toml(mock.url(),
                                        pair_toml("chain") + "listen = \"127.0.0.1:0\"\n"));
  ASSERT_NE(gw.port, 0);
  ASSERT_NE(gw.tls_port, 0);
  ASSERT_NE(gw.port, gw.tls_port);
  const auto body = chat_body("both", false);
  EXPECT_EQ(answer_text(http_call(gw.port, "POST", "/v1/chat/completions", body).body),
            expected_answer(body, true));
  const auto secure = shell(curl(gw.tls_port, "", body));
  EXPECT_EQ(answer_text(secure.out), expected_answer(body, true)) << secure.out;
}

TEST(gateway_tls_listener, a_client_that_never_finishes_its_handshake_is_cut_at_the_deadline) {
  auto mock = start_mock();
  auto gw = start_gateway("[timeouts]\ntls_handshake_ms = 200\n" +
                          listener_toml(mock.url(), pair_toml("chain")));
  // A ClientHello's first bytes, then silence: the server closes without an answer.
  const auto answer = raw_exchange(gw.tls_port, std::string("\x16\x03\x01\x00\xff", 5));
  EXPECT_EQ(answer, "");
  EXPECT_TRUE(eventually([&] {
    return metric_value(gw.admin_port, "nines_tls_handshakes_total{result=\"timeout\"}") == 1;
  }));
}

// --- reloads ---------------------------------------------------------------------------------

struct stream_result {
  bool complete = false;
  std::string served_subject;  // of the certificate this connection shook hands with
  std::string body;
  std::string error;
};

// One streamed chat request over TLS; `started` counts those whose answer head arrived.
awaitable<void> tls_stream(ssl::context& ctx, unsigned short port, std::string body,
                           stream_result& out, std::atomic<int>& started) {
  namespace beast = boost::beast;
  namespace http = beast::http;
  auto ex = co_await boost::asio::this_coro::executor;
  beast::ssl_stream<beast::tcp_stream> s(ex, ctx);
  SSL_set_tlsext_host_name(s.native_handle(), "localhost");
  s.set_verify_callback(ssl::host_name_verification("localhost"));
  auto [ce] = co_await beast::get_lowest_layer(s).async_connect(
      net::tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), port), use_nothrow);
  if (ce) {
    out.error = "connect: " + ce.message();
    co_return;
  }
  auto [he] = co_await s.async_handshake(ssl::stream_base::client, use_nothrow);
  if (he) {
    out.error = "handshake: " + he.message();
    co_return;
  }
  if (X509* peer = SSL_get1_peer_certificate(s.native_handle())) {
    char line[256];
    X509_NAME_oneline(X509_get_subject_name(peer), line, sizeof line);
    out.served_subject = line;
    X509_free(peer);
  }
  http::request<http::string_body> req{http::verb::post, "/v1/chat/completions", 11};
  req.set(http::field::host, "localhost");
  req.set(http::field::content_type, "application/json");
  req.body() = body;
  req.prepare_payload();
  auto [we, wn] = co_await http::async_write(s, req, use_nothrow);
  if (we) {
    out.error = "write: " + we.message();
    co_return;
  }
  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(16 << 20);
  auto [he2, hn] = co_await http::async_read_header(s, buffer, parser, use_nothrow);
  if (he2) {
    out.error = "head: " + he2.message();
    co_return;
  }
  started.fetch_add(1);
  auto [re, rn] = co_await http::async_read(s, buffer, parser, use_nothrow);
  if (re) {
    out.error = "body: " + re.message();
    co_return;
  }
  out.body = parser.get().body();
  out.complete = parser.is_done();
  (void)wn;
  (void)hn;
  (void)rn;
}

// The certificate and key as Kubernetes mounts a secret: `dir/current` is a symlink to a
// directory holding both, and an update swaps the symlink by rename, so that the pair changes at
// once and never half.
struct mounted_pair {
  std::string dir;
  int version = 0;
  std::string cert() const { return dir + "/current/served.pem"; }
  std::string key() const { return dir + "/current/served.key"; }
  void put(const std::string& cert_fixture, const std::string& key_fixture) {
    const auto next = dir + "/v" + std::to_string(++version);
    std::filesystem::create_directories(next);
    std::filesystem::copy_file(fx(cert_fixture), next + "/served.pem");
    std::filesystem::copy_file(fx(key_fixture), next + "/served.key");
    std::filesystem::create_symlink(next, dir + "/current.new");
    std::filesystem::rename(dir + "/current.new", dir + "/current");
  }
};

TEST(gateway_tls_listener, certificates_reload_on_file_change_under_100_live_streams_none_dropped) {
  constexpr int streams = 100;
  // 100 tokens 40 ms apart: each stream lasts about 4 s, longer than a reload takes.
  auto mock = start_mock({"--tokens", "100", "--faults", "tpot_ms=40"});
  mounted_pair mounted{tls_fixture_dir() + "/reload-" + std::to_string(::getpid())};
  mounted.put("chain.pem", "leaf.key");
  const auto cert = mounted.cert();
  const auto key = mounted.key();
  auto gw = start_gateway("[limits]\nmax_client_connections = 1000\n" +
                          listener_toml(mock.url(), "cert_file = \"" + cert +
                                                        "\"\nkey_file = \"" + key + "\"\n"));

  ssl::context ctx(ssl::context::tls_client);
  ctx.load_verify_file(fx("ca.pem"));
  ctx.set_verify_mode(ssl::verify_peer);
  boost::asio::io_context io;
  std::vector<stream_result> results(streams);
  std::vector<std::string> bodies;
  std::atomic<int> started{0};
  for (int i = 0; i < streams; ++i) {
    bodies.push_back(chat_body("reload " + std::to_string(i), true));
    boost::asio::co_spawn(io, tls_stream(ctx, gw.tls_port, bodies.back(), results[i], started),
                          boost::asio::detached);
  }
  std::thread runner([&] { io.run(); });
  ASSERT_TRUE(eventually([&] { return started.load() == streams; }))
      << started.load() << " of " << streams << " streams started";

  mounted.put("other.pem", "other.key");
  const auto swapped = std::chrono::steady_clock::now();
  ASSERT_TRUE(eventually([&] {
    return served_subject(gw.tls_port, "").find("CN = other.test") != std::string::npos;
  }));
  const auto took = std::chrono::steady_clock::now() - swapped;
  EXPECT_LE(took, std::chrono::seconds(1)) << "the new certificate was served only after "
                                           << std::chrono::duration<double>(took).count() << " s";
  EXPECT_TRUE(gw.proc->wait_for_output("TLS reload (a certificate file changed): serving "
                                       "CN=other.test"));
  EXPECT_EQ(metric_value(gw.admin_port, "nines_tls_reloads_total{result=\"ok\"}"), 1U);

  // A broken certificate: refused with its reason, the current one stays.
  { std::ofstream(mounted.dir + "/broken.pem") << "not a certificate\n"; }
  std::filesystem::rename(mounted.dir + "/broken.pem", cert);
  EXPECT_TRUE(gw.proc->wait_for_output("cannot be read as a PEM certificate chain: " + cert));
  EXPECT_TRUE(eventually([&] {
    return metric_value(gw.admin_port, "nines_tls_reloads_total{result=\"refused\"}") == 1;
  }));
  EXPECT_NE(served_subject(gw.tls_port, "").find("CN = other.test"), std::string::npos);

  runner.join();
  int complete = 0;
  for (int i = 0; i < streams; ++i) {
    const auto& r = results[i];
    EXPECT_TRUE(r.complete) << "stream " << i << ": " << r.error;
    EXPECT_EQ(r.served_subject, "/CN=localhost") << "stream " << i << " began before the reload";
    EXPECT_EQ(stream_text(sse_events(r.body)), expected_answer(bodies[i], true, 100))
        << "stream " << i;
    complete += r.complete ? 1 : 0;
  }
  EXPECT_EQ(complete, streams);
}

TEST(gateway_tls_listener, sighup_reloads_the_certificates) {
  auto mock = start_mock();
  auto gw = start_gateway(listener_toml(mock.url(), pair_toml("chain")));
  gw.proc->signal(SIGHUP);
  EXPECT_TRUE(gw.proc->wait_for_output("TLS reload (SIGHUP): serving CN=localhost"));
  EXPECT_TRUE(eventually([&] {
    return metric_value(gw.admin_port, "nines_tls_reloads_total{result=\"ok\"}") == 1;
  }));
}

// --- configuration ---------------------------------------------------------------------------

std::pair<int, std::string> check(const std::string& tls) {
  const auto path = tls_fixture_dir() + "/check-" + std::to_string(std::rand()) + ".toml";
  std::ofstream(path) << "[tls]\n" << tls << "[[upstreams]]\nurl = \"http://127.0.0.1:9/v1\"\n";
  process p({NINES_BINARY, "gateway", "--config", path, "--check"});
  const auto code = p.wait_exit();
  return {code.value_or(-1), p.output()};
}

TEST(gateway_tls_listener, check_names_the_key_and_file_of_every_certificate_problem) {
  {
    auto [code, out] = check("cert_file = \"/nonexistent/cert.pem\"\nkey_file = \"" +
                             fx("leaf.key") + "\"\n");
    EXPECT_EQ(code, 2);
    EXPECT_NE(out.find("tls.cert_file"), std::string::npos) << out;
    EXPECT_NE(out.find("/nonexistent/cert.pem"), std::string::npos) << out;
  }
  {
    auto [code, out] = check("cert_file = \"" + fx("chain.pem") + "\"\nkey_file = \"" +
                             fx("other.key") + "\"\n");
    EXPECT_EQ(code, 2);
    EXPECT_NE(out.find("tls.key_file"), std::string::npos) << out;
    EXPECT_NE(out.find("is not the key of the certificate"), std::string::npos) << out;
  }
  {
    auto [code, out] = check(pair_toml("expired"));
    EXPECT_EQ(code, 2);
    EXPECT_NE(out.find("expired"), std::string::npos) << out;
    EXPECT_NE(out.find(fx("expired.pem")), std::string::npos) << out;
  }
  {
    auto [code, out] = check(pair_toml("chain") + "client_ca_file = \"" + fx("leaf.key") +
                             "\"\n[[tls.sni]]\nserver_name = \"a.test\"\ncert_file = \"" +
                             fx("other.pem") + "\"\nkey_file = \"/nonexistent/other.key\"\n");
    EXPECT_EQ(code, 2);
    EXPECT_NE(out.find("tls.client_ca_file"), std::string::npos) << out;
    EXPECT_NE(out.find("tls.sni[0].key_file"), std::string::npos) << out;
    EXPECT_NE(out.find("/nonexistent/other.key"), std::string::npos) << out;
  }
  {
    auto [code, out] = check("cert_file = \"" + fx("chain.pem") + "\"\n");
    EXPECT_EQ(code, 2);
    EXPECT_NE(out.find("tls.key_file"), std::string::npos) << out;
  }
  {
    auto [code, out] = check(pair_toml("chain") + "min_version = \"1.1\"\n");
    EXPECT_EQ(code, 2);
    EXPECT_NE(out.find("tls.min_version"), std::string::npos) << out;
  }
  {
    auto [code, out] = check(pair_toml("chain") + "[[tls.sni]]\nserver_name = \"a.test\"\n" +
                             pair_toml("other") + "[[tls.sni]]\nserver_name = \"A.test\"\n" +
                             pair_toml("other"));
    EXPECT_EQ(code, 2);
    EXPECT_NE(out.find("tls.sni[1].server_name"), std::string::npos) << out;
  }
  auto [ok, out] = check(pair_toml("chain"));
  EXPECT_EQ(ok, 0) << out;
}

}  // namespace
}  // namespace nines::test
