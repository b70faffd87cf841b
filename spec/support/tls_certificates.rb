# frozen_string_literal: true

require "open3"
require "tmpdir"
require "fileutils"

# Certificates for the TLS specs, made with the openssl command in a
# temporary directory of their own: certificate authorities, certificates they
# sign (for a server, a client, or both), and one-file self-signed ones. Keys
# are P-256 (quick to make, and what both rustls and Redis's OpenSSL take);
# everything is valid for one day.
#
#   certificates = TlsCertificates.new
#   ca = certificates.authority("ca")
#   server = certificates.issue("server", by: ca)   # for 127.0.0.1 and localhost
#   server.cert  # => ".../server.crt" (PEM)
#   server.key   # => ".../server.key" (PEM, unencrypted)
#   certificates.remove
class TlsCertificates
  # A certificate and its key, as PEM file names.
  Pair = Struct.new(:cert, :key)

  # The names a certificate is for unless told otherwise: the loopback
  # address the specs' servers listen on, and the name that resolves to it.
  LOOPBACK = ["IP:127.0.0.1", "DNS:localhost"].freeze
  DAYS = "1"

  Error = Class.new(StandardError)

  attr_reader :dir

  def initialize
    @dir = Dir.mktmpdir("sms-tls")
  end

  # A certificate authority named +name+ (a self-signed CA certificate).
  def authority(name)
    pair = pair(name)
    openssl("req", "-x509", *new_key(pair), "-out", pair.cert, "-days", DAYS, "-subj", "/CN=#{name}",
            "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    pair
  end

  # A certificate for +hosts+ (subjectAltName entries), signed by the
  # authority +by+, usable by a server and by a client (Redis's own replicas
  # and tools present one certificate for both).
  def issue(name, by:, hosts: LOOPBACK)
    pair = pair(name)
    request = File.join(dir, "#{name}.csr")
    openssl("req", "-new", *new_key(pair), "-out", request, "-subj", "/CN=#{name}")
    extensions = File.join(dir, "#{name}.ext")
    File.write(extensions, <<~EXTENSIONS)
      basicConstraints = critical, CA:FALSE
      keyUsage = critical, digitalSignature
      extendedKeyUsage = serverAuth, clientAuth
      subjectAltName = #{hosts.join(", ")}
    EXTENSIONS
    openssl("x509", "-req", "-in", request, "-CA", by.cert, "-CAkey", by.key, "-CAcreateserial",
            "-days", DAYS, "-extfile", extensions, "-out", pair.cert)
    pair
  end

  # The one-file setup: a self-signed certificate for +hosts+ that is its
  # own CA (what `openssl req -x509` makes by default), given to the server as
  # its certificate and to clients as the CA to trust.
  def self_signed(name, hosts: LOOPBACK)
    pair = pair(name)
    openssl("req", "-x509", *new_key(pair), "-out", pair.cert, "-days", DAYS, "-subj", "/CN=#{name}",
            "-addext", "subjectAltName=#{hosts.join(",")}")
    pair
  end

  # Removes the directory and everything in it.
  def remove
    FileUtils.rm_rf(dir)
  end

  private

  def pair(name)
    Pair.new(File.join(dir, "#{name}.crt"), File.join(dir, "#{name}.key"))
  end

  def new_key(pair)
    ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", pair.key]
  end

  def openssl(*args)
    output, status = Open3.capture2e("openssl", *args)
    raise Error, "openssl #{args.first(2).join(" ")} failed: #{output}" unless status.success?
  end
end
