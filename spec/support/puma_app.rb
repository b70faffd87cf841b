# frozen_string_literal: true

require "json"
require "net/http"
require "securerandom"
require "socket"
require "tmpdir"
require_relative "loopback_port"
require "fileutils"

# The Rails application in spec/rails_app served by Puma in cluster mode
# (two workers forked after the app loaded), on a free loopback port, with
# the bus and the L2 on the redis-servers given. Started and stopped by pid;
# its log is in #log_path. Requests go to whichever worker accepts them, and
# every answer names the worker's pid.
class PumaApp
  APP_DIR = File.expand_path("../rails_app", __dir__)
  LIB_DIR = File.expand_path("../../lib", __dir__)
  START_TIMEOUT = 60
  STOP_TIMEOUT = 15

  attr_reader :port, :pid, :log_path, :channel

  def initialize(bus_url:, l2_url:, channel: "puma-spec-#{SecureRandom.hex(4)}")
    @bus_url = bus_url
    @l2_url = l2_url
    @channel = channel
    @dir = Dir.mktmpdir("synced-memory-store-puma")
    @log_path = File.join(@dir, "app.log")
  end

  # Starts Puma and waits until it answers.
  def start
    @port = LoopbackPort.free
    env = {
      "PORT" => port.to_s, "L2_URL" => @l2_url, "BUS_URL" => @bus_url, "BUS_CHANNEL" => channel,
      "SECRET_KEY_BASE" => "puma-spec-#{"x" * 64}", "LOG_PATH" => @log_path, "RAILS_ENV" => "production",
      "RUBYLIB" => [LIB_DIR, ENV.fetch("RUBYLIB", nil)].compact.join(File::PATH_SEPARATOR)
    }
    @pid = Process.spawn(env, RbConfig.ruby, "-S", "puma", "-C", "config/puma.rb",
                         chdir: APP_DIR, in: File::NULL, out: [@log_path, "a"], err: %i[child out])
    deadline = monotonic + START_TIMEOUT
    until get("/pid")
      raise "Puma did not start within #{START_TIMEOUT} s; its log:\n#{log_tail}" if monotonic > deadline
      raise "Puma exited; its log:\n#{log_tail}" unless alive?

      sleep 0.1
    end
    self
  end

  # Stops Puma (SIGTERM to the master, which stops its workers; SIGKILL after
  # a deadline) and removes its directory.
  def stop
    return unless @pid

    Process.kill(:TERM, @pid)
    deadline = monotonic + STOP_TIMEOUT
    sleep 0.05 while alive? && monotonic < deadline
    Process.kill(:KILL, @pid) if alive?
    Process.wait(@pid)
  rescue Errno::ESRCH, Errno::ECHILD
    nil
  ensure
    @pid = nil
    FileUtils.rm_rf(@dir)
  end

  # GET +path+; the parsed JSON answer, or nil when nobody answered.
  def get(path, **params)
    request(Net::HTTP::Get, path, params)
  end

  # POST +path+; the parsed JSON answer.
  def post(path, **params)
    request(Net::HTTP::Post, path, params)
  end

  def log_tail(lines = 40)
    File.exist?(@log_path) ? File.readlines(@log_path).last(lines).join : "(no log)"
  end

  private

  def request(kind, path, params)
    uri = URI("http://127.0.0.1:#{port}#{path}")
    uri.query = URI.encode_www_form(params) unless params.empty?
    response = Net::HTTP.start(uri.host, uri.port, open_timeout: 2, read_timeout: 10) do |http|
      http.request(kind.new(uri))
    end
    raise "#{kind} #{path} answered #{response.code}: #{response.body[0, 500]}" unless response.is_a?(Net::HTTPOK)

    JSON.parse(response.body)
  rescue Errno::ECONNREFUSED, Errno::ECONNRESET, EOFError, Net::OpenTimeout
    nil
  end

  def alive?
    Process.waitpid(@pid, Process::WNOHANG).nil?
  rescue Errno::ECHILD
    false
  end

  def monotonic
    Process.clock_gettime(Process::CLOCK_MONOTONIC)
  end
end
