# frozen_string_literal: true

require "openssl"

# The TLS part of the redis: option (ssl_params) is checked when the store is
# made: what the bus cannot honour is refused, and files that are not what
# their option says are refused by the option's name, never showing what they
# hold (a key is a secret). No server is involved: these stores never connect.
RSpec.describe "The redis: option's ssl_params" do
  let(:certificates) { TlsCertificates.new }
  let(:ca) { certificates.authority("ca") }
  let(:client) { certificates.issue("client", by: ca) }
  let(:stores) { [] }

  after do
    stores.each(&:close)
    certificates.remove
  end

  def store(ssl_params)
    SyncedMemoryStore::Store.new(redis: { url: "rediss://127.0.0.1:1/0", ssl_params: ssl_params })
                            .tap { |store| stores << store }
  end

  def refusal(ssl_params)
    error = nil
    expect { store(ssl_params) }.to raise_error(SyncedMemoryStore::ConfigurationError) { |e| error = e }
    error.message
  end

  it "takes the CA, certificate and key as file names, PEM text or OpenSSL objects" do
    pem = SyncedMemoryStore::RedisOption.normalize(
      { url: "rediss://h/0", ssl_params: { ca_file: ca.cert, cert: File.read(client.cert),
                                           key: OpenSSL::PKey.read(File.read(client.key)) } }
    )

    expect(pem).to include(ca_pem: File.binread(ca.cert), cert_pem: File.binread(client.cert))
    expect(pem[:key_pem]).to include("PRIVATE KEY")
    expect(store(ca_file: File.read(ca.cert), cert: client.cert, key: client.key)).to be_a(SyncedMemoryStore::Store)
  end

  it "never shows a String that is neither a file name nor PEM text (a key, say)" do
    key = File.read(client.key).lines[1..-2].join # the PEM without its BEGIN and END lines
    message = refusal(ca_file: ca.cert, cert: client.cert, key: key)

    expect(message).to start_with("redis: ssl_params key (neither a file name nor PEM text) cannot be read")
    expect(message).not_to include(key.lines.first.strip)
    expect(refusal(ca_file: "/no/such/ca.pem")).to include("ca_file /no/such/ca.pem cannot be read (No such file")
  end

  it "refuses settings the bus cannot honour rather than ignoring them" do
    expect(refusal(ca_path: certificates.dir, cert_store: OpenSSL::X509::Store.new))
      .to eq("redis: ssl_params :ca_path, :cert_store are not supported " \
             "(supported: :ca_file, :cert, :key, :verify_mode)")
    expect(refusal(verify_hostname: false)).to include("verify_hostname: false is not supported")
  end

  it "refuses a CA file or a certificate that holds no certificate" do
    garbage = File.join(certificates.dir, "garbage.pem").tap { |path| File.write(path, "not PEM\n") }

    expect(refusal(ca_file: garbage)).to start_with("redis: ssl_params ca_file holds no certificate")
    expect(refusal(cert: garbage, key: client.key)).to start_with("redis: ssl_params cert holds no certificate")
  end

  it "refuses a key that does not go with the certificate" do
    stranger = certificates.issue("stranger", by: ca)

    expect(refusal(cert: client.cert, key: stranger.key))
      .to start_with("redis: ssl_params key does not go with cert")
  end

  it "refuses an encrypted key, saying how to give it decrypted" do
    key = OpenSSL::PKey.read(File.read(client.key))
    encrypted = File.join(certificates.dir, "encrypted.key")
    File.write(encrypted, key.private_to_pem(OpenSSL::Cipher.new("aes-256-cbc"), "passphrase"))

    expect(refusal(cert: client.cert, key: encrypted))
      .to eq("redis: ssl_params key is encrypted; give it decrypted, e.g. as " \
             "OpenSSL::PKey.read(File.read(path), passphrase)")
  end
end
