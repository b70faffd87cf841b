# frozen_string_literal: true

require "fileutils"
require "securerandom"
require "tmpdir"
require_relative "timing"
require_relative "../../spec/support/redis_server"
require_relative "../../spec/support/peer"

module Bench
  # The processes a benchmark run starts: private redis-servers and Peer
  # processes (spec/support), each tracked so that #stop_all (or #release, for
  # peers a section is done with) stops it by pid. Nothing is left running.
  class Fixtures
    POLL = 0.005

    def initialize
      @dir = Dir.mktmpdir("sms-bench")
      @servers = []
      @peers = []
    end

    # A new redis-server on a free loopback port.
    def redis
      RedisServer.new.tap do |server|
        @servers << server
        server.start
      end
    end

    # Starts peer processes named +names+ (in parallel); with store options,
    # each opens its :main store with them and waits for its bus connection
    # when sync is on. With +checkout+, they run another checkout's build (see
    # Peer.launch).
    def peers(*names, checkout: nil, **store_options)
      launches = names.map { |name| Peer.launch(name: name.to_s, dir: @dir, checkout: checkout) }
      peers = launches.map do |launch|
        launch.connect.tap { |peer| @peers << peer }
      rescue StandardError
        launches.each { |other| Peer.kill_pid(other.pid, child: true) }
        raise
      end
      peers.each { |peer| open_store(peer, **store_options) } unless store_options.empty?
      peers
    end

    def open_store(peer, name: :main, **options)
      peer.open_store(name, options)
      peer.wait_for_connection(10, store: name, within: 15) unless options[:sync] == false
    end

    # Kills +peers+ (by pid): a section that is done with them frees the CPU.
    def release(*peers)
      peers.each do |peer|
        peer.kill
        @peers.delete(peer)
      end
    end

    # A pub/sub channel of its own for one section.
    def channel(section)
      "sms-bench-#{section}-#{SecureRandom.hex(4)}"
    end

    def stop_all
      @peers.reverse_each(&:kill)
      @peers.clear
      @servers.each(&:stop)
      @servers.clear
    ensure
      FileUtils.rm_rf(@dir)
    end

    # Polls the block every +poll+ seconds until it is true or +timeout+
    # seconds pass; returns whether it became true.
    def self.wait_until(timeout, poll: POLL)
      deadline = Timing.now + timeout
      loop do
        return true if yield
        return false if Timing.now > deadline

        sleep poll
      end
    end
  end
end
