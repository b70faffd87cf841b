# frozen_string_literal: true

# When TLS fails between the bus and its server, the store does not connect
# (and does not trust L1), and wait_for_connection's error and
# stats[:last_error] say which certificate was refused and what to do, in
# words one can act on. (The bus over TLS when it works: tls_spec.rb.)
RSpec.describe "Sync: why the bus is not connected over TLS" do
  include SyncHelpers

  let(:certificates) { TlsCertificates.new }
  let(:ca) { certificates.authority("ca") }
  let(:stores) { [] }

  after do
    stores.each(&:close)
    certificates.remove
  end

  # A server with +certificate+, checking clients' certificates against +authority+.
  def start_tls_redis(certificate, authority, auth_clients: false)
    start_redis(tls: RedisServer::Tls.new(cert: certificate.cert, key: certificate.key, ca: authority.cert,
                                          auth_clients: auth_clients))
  end

  # Why a store on +redis+ does not connect (stats[:last_error]).
  def refusal(redis)
    store = SyncedMemoryStore::Store.new(cache: :memory_store, redis: redis, channel: channel,
                                         health_timeout: 0.3, health_interval: 0.1)
    stores << store
    why_not_connected(store)
  end

  context "when the server's certificate is refused" do
    it "says it is not signed by the CA given in ssl_params ca_file" do
      other_ca = certificates.authority("other-ca")
      bus = start_tls_redis(certificates.issue("server", by: other_ca), other_ca)

      expect(refusal({ url: bus.url, ssl_params: { ca_file: ca.cert } }))
        .to eq("#{bus.url}: TLS: the server's certificate is not signed by the CA in ssl_params ca_file; " \
               "give the CA that signed it")
    end

    it "says no CA this process trusts signed it, and how to give one, when none was given" do
      bus = start_tls_redis(certificates.issue("server", by: ca), ca)

      expect(refusal(bus.url)).to include("not signed by a CA this process trusts")
        .and include("give the CA as ssl_params: { ca_file: }")
    end

    it "says a one-file self-signed certificate serves as its own CA, and what to make instead" do
      self_signed = certificates.self_signed("self-signed")
      bus = start_tls_redis(self_signed, self_signed)

      expect(refusal({ url: bus.url, ssl_params: { ca_file: self_signed.cert } }))
        .to include("a CA certificate serving as its own (a one-file self-signed setup)")
        .and include("Make a CA and a server certificate signed by it")
    end

    it "says it is for another host name, and names both" do
      bus = start_tls_redis(certificates.issue("server", by: ca, hosts: ["DNS:redis.example.com"]), ca)

      expect(refusal({ url: bus.url, ssl_params: { ca_file: ca.cert } }))
        .to include("the server's certificate is not for 127.0.0.1 (it is for DnsName(\"redis.example.com\"))")
        .and include("subjectAltName")
    end
  end

  context "when the server authenticates its clients (tls-auth-clients yes)" do
    let(:bus) { start_tls_redis(certificates.issue("server", by: ca), ca, auth_clients: true) }

    it "says the server requires a client certificate when none is given" do
      expect(refusal({ url: bus.url, ssl_params: { ca_file: ca.cert } }))
        .to eq("#{bus.url}: TLS: the server requires a client certificate (tls-auth-clients); " \
               "give one as ssl_params: { cert:, key: }")
    end

    it "says the server refused a client certificate signed by a CA it does not trust" do
      stranger = certificates.issue("stranger", by: certificates.authority("other-ca"))

      expect(refusal({ url: bus.url, ssl_params: { ca_file: ca.cert, cert: stranger.cert, key: stranger.key } }))
        .to include("the server refused this process's client certificate (UnknownCA)")
        .and include("signed by a CA the server trusts")
    end
  end
end
