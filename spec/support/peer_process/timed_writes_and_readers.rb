# frozen_string_literal: true

class PeerProcess
  # The commands that time propagation: writes stamped with the monotonic clock
  # (write_series, timed_write), and Readers that record when each value shows
  # up in this process (start_reader, reader_progress, stop_reader). The clock
  # is one for every process of the machine, so two processes' stamps compare.
  module TimedWritesAndReaders
    private

    # Writes +values+ to +key+ one by one, waiting +gaps[i]+ seconds after the
    # i-th write; returns [[value, started, returned], ...] (monotonic seconds).
    def command_write_series(key, values, gaps, options = {})
      values.each_with_index.map do |value, index|
        started = monotonic
        store.write(key, value, options)
        returned = monotonic
        # A genuine gap between writes: how far apart updates are is what the
        # caller measures against.
        sleep gaps[index] if gaps[index].positive?
        [value, started, returned]
      end
    end

    # Writes +value+ under +key+ and returns [result, started, returned].
    def command_timed_write(key, value, options = {})
      started = monotonic
      result = store.write(key, value, options)
      [result, started, monotonic]
    end

    # Starts a Reader of +key+ (see Reader); returns once its loop is running.
    def command_start_reader(key, mode:, interval: 0.001, max_seconds: 30, name: :reader)
      raise ArgumentError, "a reader named #{name.inspect} is running" if @readers[name]
      raise ArgumentError, "mode: must be :tight or :sleepy" unless %i[tight sleepy].include?(mode)

      @readers[name] = Reader.new(store, key, interval: mode == :sleepy ? interval : nil, max_seconds: max_seconds)
      true
    end

    # [start time of the reader's latest read, runs recorded, whether it still runs].
    def command_reader_progress(name: :reader)
      reader = @readers.fetch(name)
      [reader.last_start, reader.runs.size, reader.alive?]
    end

    # Stops the reader and returns its record (see Reader#stop).
    def command_stop_reader(name: :reader)
      reader = @readers.delete(name) or raise ArgumentError, "no reader named #{name.inspect}"
      reader.stop
    end
  end
end
