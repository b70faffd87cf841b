# frozen_string_literal: true

# When the bus cannot be reached, wait_for_connection's error and
# stats[:last_error] say why, in words one can act on, and never show a
# password.
RSpec.describe "Sync: why the bus is not connected" do
  include SyncHelpers

  let(:stores) { [] }

  after { stores.each(&:close) }

  def store(redis)
    SyncedMemoryStore::Store.new(redis: redis, channel: channel, health_timeout: 0.3, health_interval: 0.1)
                            .tap { |store| stores << store }
  end

  def connection_error(redis)
    error = nil
    expect { store(redis).wait_for_connection(1) }.to raise_error(SyncedMemoryStore::ConnectionError) { |e| error = e }
    error.message
  end

  it "says the connection was refused" do
    port = closed_port
    expect(connection_error("redis://127.0.0.1:#{port}/0"))
      .to include("redis://127.0.0.1:#{port}/0 refused the connection (is Redis listening there?)")
  end

  it "says the host is unknown" do
    expect(connection_error("redis://no-such-host.invalid:6379/0")).to match(/unknown host/)
  end

  it "says the credentials were refused, without the password" do
    server = start_redis
    server.command("CONFIG", "SET", "requirepass", "right-password")
    message = connection_error("redis://:hunter2-wrong@127.0.0.1:#{server.port}/0")

    expect(message).to include("refused the credentials")
    expect(message).not_to include("hunter2")
  end

  it "says a password is needed when none was given" do
    server = start_redis
    server.command("CONFIG", "SET", "requirepass", "right-password")

    expect(connection_error(server.url)).to include("NOAUTH")
  end

  it "never trusts L1 when the server refuses the subscription, and says why (NOPERM for the channel)" do
    server = start_redis
    server.command("ACL", "SETUSER", "bus", "on", ">pw", "+@all", "resetchannels", "&some-other-channel")
    cache = store("redis://bus:pw@127.0.0.1:#{server.port}/0")
    cache.write("k", "v")

    eventually { cache.stats[:last_error] }
    expect(cache.stats).to include(connected: false, trusted: false)
    expect(cache.stats[:last_error]).to include("NOPERM").and include(channel)
    expect { cache.wait_for_connection(0.5) }.to raise_error(SyncedMemoryStore::ConnectionError, /NOPERM/)
  end

  it "keeps the cause in stats[:last_error] until the bus is back" do
    cache = store("redis://127.0.0.1:#{closed_port}/0")
    eventually { cache.stats[:last_error] }

    expect(cache.stats[:last_error]).to include("refused the connection")
  end
end
