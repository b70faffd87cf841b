# frozen_string_literal: true

require "redis"
require "socket"
require "uri"
require_relative "timing"

module Bench
  # Records every message published on a pub/sub channel, so that it can be
  # published again later as fast as Redis takes it (to measure how fast a
  # subscriber can apply real bus traffic without being limited by the
  # writers that made it).
  #
  #   recording = BusRecording.record(url, channel) { flood the channel }
  #   recording.replay(url, channel)
  class BusRecording
    END_MARK = "bench-recording-end"

    attr_reader :messages

    # Records the channel while the block runs, then until every message
    # published before the block returned has arrived (an end mark published
    # after it closes the recording; Redis delivers a channel in order).
    def self.record(url, channel)
      recording = new
      redis = Redis.new(url: url)
      subscribed = Queue.new
      listener = Thread.new { recording.listen(redis, channel, subscribed) }
      raise "could not subscribe to #{channel}" unless subscribed.pop

      yield
      Redis.new(url: url).tap { |publisher| publisher.publish(channel, END_MARK) }.close
      listener.join(60) or raise "the end of the recording of #{channel} never arrived"
      recording
    ensure
      listener&.kill
      redis&.close
    end

    def initialize
      @messages = []
    end

    def listen(redis, channel, subscribed)
      redis.subscribe(channel) do |on|
        on.subscribe { subscribed << true }
        on.message do |_channel, payload|
          payload == END_MARK ? redis.unsubscribe(channel) : @messages << payload
        end
      end
    ensure
      subscribed << false
    end

    # Publishes the recorded messages, in order, as fast as Redis takes them:
    # every PUBLISH is encoded beforehand and the whole stream written at once
    # on a raw connection, its replies read by a second thread. Returns the
    # seconds until Redis had answered every PUBLISH (so every message had
    # reached the subscribers' connections or output buffers).
    def replay(url, channel)
      stream = encode(channel)
      uri = URI(url)
      socket = TCPSocket.new(uri.host, uri.port)
      started = Timing.now
      replies = Thread.new { await_replies(socket, @messages.size) }
      socket.write(stream)
      replies.join(60) or raise "Redis did not answer the replayed messages within 60 s"
      Timing.now - started
    ensure
      replies&.kill
      socket&.close
    end

    private

    def encode(channel)
      @messages.each_with_object(String.new(encoding: Encoding::BINARY)) do |message, stream|
        stream << "*3\r\n$7\r\nPUBLISH\r\n$#{channel.bytesize}\r\n#{channel}\r\n$#{message.bytesize}\r\n".b
        stream << message.b << "\r\n"
      end
    end

    # Reads +count+ one-line replies (PUBLISH answers an integer).
    def await_replies(socket, count)
      seen = 0
      while seen < count
        chunk = socket.readpartial(1 << 16)
        raise "Redis refused a replayed message: #{chunk[/-[^\r]*/]}" if chunk.include?("-")

        seen += chunk.count("\n")
      end
    end
  end
end
