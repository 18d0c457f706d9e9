//! pathttl — a response plugin: a per-path TTL table from the plugin's
//! config, for sites whose origin sends no useful Cache-Control.
//!
//! Config: an object of path prefixes; the longest matching prefix wins.
//! A value is a TTL ("90s", "5m", "2h", "1d", or a number of seconds; 0
//! means "do not store"), or an object with "ttl", "swr"
//! (stale-while-revalidate) and "sie" (stale-if-error):
//!
//! ```json
//! {"/static/": "1d", "/api/": {"ttl": "30s", "swr": "30s"}, "/api/cart": 0}
//! ```
//!
//! A path that matches no prefix, a status a cache may not store by
//! default, and a response marked no-store or private are left to the
//! built-in policy. Stored responses are tagged "ttl-rule:<prefix>".

use std::cell::RefCell;
use std::time::Duration;

use edgecache::{request, response};

edgecache::plugin!();

#[derive(Clone, Debug)]
struct Rule {
    prefix: String,
    ttl: Duration,
    swr: Option<Duration>,
    sie: Option<Duration>,
}

thread_local! {
    static RULES: RefCell<Vec<Rule>> = RefCell::new(Vec::new());
}

#[export_name = "init"]
pub extern "C" fn init() -> i32 {
    let config = edgecache::config();
    match parse_rules(&config) {
        Ok(mut rules) => {
            // Longest prefix first: the first match wins.
            rules.sort_by(|a, b| b.prefix.len().cmp(&a.prefix.len()));
            RULES.with(|r| *r.borrow_mut() = rules);
            edgecache::OK
        }
        Err(e) => {
            edgecache::log(edgecache::Level::Error, &format!("pathttl: bad config: {}", e));
            edgecache::DECLINE
        }
    }
}

#[export_name = "response"]
pub extern "C" fn response_hook() -> i32 {
    // RFC 9111 §4.2.2: statuses a cache may store without explicit freshness.
    match response::status() {
        200 | 203 | 204 | 206 | 300 | 301 | 308 | 404 | 405 | 410 | 414 | 501 => {}
        _ => return edgecache::DECLINE,
    }
    if let Some(cc) = response::header("Cache-Control") {
        let cc = cc.to_ascii_lowercase();
        if cc.split(',').map(|d| d.trim()).any(|d| d == "no-store" || d == "private" || d.starts_with("private=")) {
            return edgecache::DECLINE;
        }
    }
    let path = request::path();
    let rule = RULES.with(|r| r.borrow().iter().find(|r| path.starts_with(&r.prefix)).cloned());
    let rule = match rule {
        Some(r) => r,
        None => return edgecache::DECLINE,
    };
    if rule.ttl.is_zero() {
        response::no_store("path-rule");
        return edgecache::OK;
    }
    response::set_ttl(rule.ttl);
    if let Some(d) = rule.swr {
        response::set_stale_while_revalidate(d);
    }
    if let Some(d) = rule.sie {
        response::set_stale_if_error(d);
    }
    response::add_tag(&format!("ttl-rule:{}", rule.prefix));
    edgecache::OK
}

// ---- config: a small JSON reader, enough for the documented shape ----

#[derive(Debug)]
enum Json {
    Str(String),
    Num(f64),
    Obj(Vec<(String, Json)>),
    Other,
}

struct Parser<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Parser<'a> {
    fn ws(&mut self) {
        while self.i < self.b.len() && (self.b[self.i] as char).is_ascii_whitespace() {
            self.i += 1;
        }
    }
    fn eat(&mut self, c: u8) -> Result<(), String> {
        self.ws();
        if self.b.get(self.i) == Some(&c) {
            self.i += 1;
            Ok(())
        } else {
            Err(format!("expected '{}' at byte {}", c as char, self.i))
        }
    }
    fn value(&mut self) -> Result<Json, String> {
        self.ws();
        match self.b.get(self.i) {
            Some(b'"') => self.string().map(Json::Str),
            Some(b'{') => self.object(),
            Some(c) if c.is_ascii_digit() || *c == b'-' => {
                let start = self.i;
                while self.i < self.b.len() && matches!(self.b[self.i], b'0'..=b'9' | b'.' | b'-' | b'+' | b'e' | b'E') {
                    self.i += 1;
                }
                std::str::from_utf8(&self.b[start..self.i])
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .map(Json::Num)
                    .ok_or_else(|| format!("bad number at byte {}", start))
            }
            Some(_) => {
                for lit in ["true", "false", "null"] {
                    if self.b[self.i..].starts_with(lit.as_bytes()) {
                        self.i += lit.len();
                        return Ok(Json::Other);
                    }
                }
                Err(format!("unexpected byte {}", self.i))
            }
            None => Err("unexpected end".into()),
        }
    }
    fn string(&mut self) -> Result<String, String> {
        self.eat(b'"')?;
        let mut out = String::new();
        loop {
            let c = *self.b.get(self.i).ok_or("unterminated string")?;
            self.i += 1;
            match c {
                b'"' => return Ok(out),
                b'\\' => {
                    let e = *self.b.get(self.i).ok_or("unterminated string")?;
                    self.i += 1;
                    out.push(match e {
                        b'n' => '\n',
                        b't' => '\t',
                        b'r' => '\r',
                        b'"' | b'\\' | b'/' => e as char,
                        _ => return Err(format!("unsupported escape at byte {}", self.i)),
                    });
                }
                _ => {
                    // Copy UTF-8 sequences through unchanged.
                    let start = self.i - 1;
                    let mut end = self.i;
                    while end < self.b.len() && self.b[end] & 0xC0 == 0x80 {
                        end += 1;
                    }
                    out.push_str(std::str::from_utf8(&self.b[start..end]).map_err(|e| e.to_string())?);
                    self.i = end;
                }
            }
        }
    }
    fn object(&mut self) -> Result<Json, String> {
        self.eat(b'{')?;
        let mut fields = Vec::new();
        self.ws();
        if self.b.get(self.i) == Some(&b'}') {
            self.i += 1;
            return Ok(Json::Obj(fields));
        }
        loop {
            self.ws();
            let k = self.string()?;
            self.eat(b':')?;
            let v = self.value()?;
            fields.push((k, v));
            self.ws();
            match self.b.get(self.i) {
                Some(b',') => self.i += 1,
                Some(b'}') => {
                    self.i += 1;
                    return Ok(Json::Obj(fields));
                }
                _ => return Err(format!("expected ',' or '}}' at byte {}", self.i)),
            }
        }
    }
}

fn duration(v: &Json) -> Result<Duration, String> {
    match v {
        Json::Num(n) if *n >= 0.0 => Ok(Duration::from_secs_f64(*n)),
        Json::Str(s) => {
            let s = s.trim();
            let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(s.len()));
            let n: f64 = num.parse().map_err(|_| format!("bad duration {:?}", s))?;
            let mul = match unit {
                "" | "s" => 1.0,
                "ms" => 0.001,
                "m" => 60.0,
                "h" => 3600.0,
                "d" => 86400.0,
                _ => return Err(format!("bad duration unit in {:?}", s)),
            };
            Ok(Duration::from_secs_f64(n * mul))
        }
        _ => Err("a duration is a string like \"5m\" or a number of seconds".into()),
    }
}

fn parse_rules(config: &[u8]) -> Result<Vec<Rule>, String> {
    if config.iter().all(|c| c.is_ascii_whitespace()) {
        return Ok(Vec::new());
    }
    let mut p = Parser { b: config, i: 0 };
    let fields = match p.value()? {
        Json::Obj(f) => f,
        _ => return Err("the config is an object of path prefixes".into()),
    };
    let mut rules = Vec::new();
    for (prefix, v) in fields {
        if !prefix.starts_with('/') {
            return Err(format!("prefix {:?} does not start with '/'", prefix));
        }
        let mut rule = Rule { prefix, ttl: Duration::ZERO, swr: None, sie: None };
        match v {
            Json::Obj(o) => {
                for (k, v) in o {
                    match k.as_str() {
                        "ttl" => rule.ttl = duration(&v)?,
                        "swr" => rule.swr = Some(duration(&v)?),
                        "sie" => rule.sie = Some(duration(&v)?),
                        _ => return Err(format!("unknown field {:?} in rule {:?}", k, rule.prefix)),
                    }
                }
            }
            v => rule.ttl = duration(&v)?,
        }
        rules.push(rule);
    }
    Ok(rules)
}
