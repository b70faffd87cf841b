# frozen_string_literal: true

require "openssl"

# The bus over TLS, against a redis-server that speaks nothing else (no plain
# port), with certificates made for the example by a CA of its own: the
# server's certificate checked against the CA the store is given (in each of
# the ways the redis: option takes one), and, when the server asks for it, a
# client certificate signed by that CA. With a MemoryStore L2 per store, a
# value a reader's own L2 never had can only have come over the bus.
# (What the store says when TLS fails: tls_rejections_spec.rb.)
RSpec.describe "Sync: the bus over TLS" do
  include SyncHelpers

  let(:certificates) { TlsCertificates.new }
  let(:ca) { certificates.authority("ca") }
  let(:server_certificate) { certificates.issue("server", by: ca) }
  let(:client_certificate) { certificates.issue("client", by: ca) }

  after { certificates.remove }

  def start_tls_redis(auth_clients: false)
    start_redis(tls: RedisServer::Tls.new(cert: server_certificate.cert, key: server_certificate.key, ca: ca.cert,
                                          auth_clients: auth_clients))
  end

  # A write in +writer+ reaches +reader+'s L1, which serves it though the
  # reader's own L2 never had it.
  def expect_write_to_reach(writer, reader, key: "user:1", value: { "name" => "Ada" })
    expect(writer.write(key, value)).to be(true)
    eventually(message: "the write never reached the reader's L1") { reader.l1_read(key) == [:hit, value] }
    expect(reader.l2_read(key)).to be_nil
  end

  context "when the server authenticates itself (tls-auth-clients no)" do
    let(:bus) { start_tls_redis }

    it "syncs with the CA given as ssl_params: { ca_file: } in the Hash form" do
      redis = { url: bus.url, ssl_params: { ca_file: ca.cert } }
      writer, reader = spawn_peers(:writer, :reader, redis: redis, channel: channel, cache: :memory_store)
      wait_for_connections(writer, reader)

      expect(bus.url).to start_with("rediss://127.0.0.1:")
      expect_write_to_reach(writer, reader)
      expect(reader.stats).to include(l2_hits: 0, connected: true)
    end

    it "syncs with host:, port: and ssl: true, by the certificate's DNS name" do
      redis = { host: "localhost", port: bus.port, ssl: true, ssl_params: { ca_file: ca.cert } }
      writer, reader = spawn_peers(:writer, :reader, redis: redis, channel: channel, cache: :memory_store)
      wait_for_connections(writer, reader)

      expect_write_to_reach(writer, reader)
    end

    # The URL form has no place for a CA: it trusts the system's, which
    # SSL_CERT_FILE extends, as it does for OpenSSL.
    it "syncs with a plain rediss:// URL when the CA is in the trust store SSL_CERT_FILE names" do
      writer, reader = spawn_peers(:writer, :reader, env: { "SSL_CERT_FILE" => ca.cert },
                                                     redis: bus.url, channel: channel, cache: :memory_store)
      wait_for_connections(writer, reader)

      expect_write_to_reach(writer, reader)
    end
  end

  context "when the server also authenticates its clients (tls-auth-clients yes)" do
    let(:bus) { start_tls_redis(auth_clients: true) }

    it "syncs with the client certificate and key given as file names" do
      redis = { url: bus.url,
                ssl_params: { ca_file: ca.cert, cert: client_certificate.cert, key: client_certificate.key } }
      writer, reader = spawn_peers(:writer, :reader, redis: redis, channel: channel, cache: :memory_store)
      wait_for_connections(writer, reader)

      expect_write_to_reach(writer, reader)
      writer.delete("user:1")
      eventually(message: "the delete never reached the reader") { reader.l1_read("user:1") == [:miss] }
    end

    context "with stores in this process" do
      let(:stores) { [] }

      after { stores.each(&:close) }

      def store(ssl_params)
        SyncedMemoryStore::Store.new(cache: :memory_store, channel: channel,
                                     redis: { url: bus.url, ssl_params: ssl_params }).tap do |store|
          stores << store
          store.wait_for_connection
        end
      end

      def expect_in_sync(writer, reader)
        writer.write("flag", "on")
        eventually(message: "the write never reached the other store") { reader.read("flag") == "on" }
        expect(reader.stats).to include(l2_hits: 0)
      end

      it "syncs with the client certificate and key given as OpenSSL objects, as redis-rb takes them" do
        ssl_params = { ca_file: ca.cert, cert: OpenSSL::X509::Certificate.new(File.read(client_certificate.cert)),
                       key: OpenSSL::PKey.read(File.read(client_certificate.key)) }

        expect_in_sync(store(ssl_params), store(ssl_params))
      end

      it "syncs with the CA, certificate and key given as PEM text (as an environment variable holds them)" do
        ssl_params = { ca_file: File.read(ca.cert), cert: File.read(client_certificate.cert),
                       key: File.read(client_certificate.key) }

        expect_in_sync(store(ssl_params), store(ssl_params))
      end
    end
  end
end
