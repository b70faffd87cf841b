# frozen_string_literal: true

module Bench
  # Number formatting and Markdown tables for the report.
  module Format
    module_function

    # Microseconds, with as many decimals as the magnitude deserves.
    def micros(seconds)
      us(seconds * 1e6)
    end

    def us(value)
      return "–" if value.nil? || value.nan?

      digits = if value < 10
                 2
               elsif value < 100
                 1
               else
                 0
               end
      format("%.#{digits}f", value)
    end

    def ratio(value)
      value.nil? || value.nan? ? "–" : format("%.2f×", value)
    end

    def percent(value, sign: false)
      return "–" if value.nil? || value.nan?

      format(sign ? "%+.1f%%" : "%.1f%%", value * 100)
    end

    def mib(bytes)
      format("%.1f MiB", bytes / 1024.0 / 1024)
    end

    # 1234567 -> "1,234,567".
    def count(value)
      value.round.to_s.reverse.scan(/\d{1,3}/).join(",").reverse.then { |text| value.negative? ? "-#{text}" : text }
    end

    def table(headers, rows)
      lines = ["| #{headers.join(" | ")} |", "|#{headers.map { |_| "---" }.join("|")}|"]
      lines.concat(rows.map { |row| "| #{row.join(" | ")} |" })
      lines.join("\n")
    end
  end
end
