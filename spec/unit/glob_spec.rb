# frozen_string_literal: true

RSpec.describe SyncedMemoryStore::Glob do
  def matches(glob, *candidates)
    pattern = described_class.to_regexp(glob)
    candidates.grep(pattern)
  end

  it "matches any run of characters with *, across newlines" do
    expect(matches("user:*", "user:", "user:1", "user:1\n2", "users:1")).to eq(["user:", "user:1", "user:1\n2"])
  end

  it "matches exactly one character with ?" do
    expect(matches("user:?", "user:1", "user:12", "user:")).to eq(["user:1"])
  end

  it "matches character classes, ranges and negated classes" do
    expect(matches("v[ab]", "va", "vb", "vc")).to eq(%w[va vb])
    expect(matches("v[a-c]", "va", "vc", "vd")).to eq(%w[va vc])
    expect(matches("v[^a]", "va", "vb")).to eq(%w[vb])
  end

  it "treats backslash-escaped and Regexp-special characters literally" do
    expect(matches("a\\*b", "a*b", "axb")).to eq(["a*b"])
    expect(matches("a.b+(c)", "a.b+(c)", "axbb(c)")).to eq(["a.b+(c)"])
  end

  it "treats an unclosed [ literally" do
    expect(matches("a[b", "a[b", "ab")).to eq(["a[b"])
  end

  it "anchors the whole key" do
    expect(matches("b", "abc", "b")).to eq(["b"])
  end
end
