// Atlassian's own npm atlassian-jwt computes the canonical request and qsh of each URL on stdin
// (a JSON list of {method, url, secret?, claims?}); with a secret it also signs an HS256 token whose
// qsh is that hash, as atlassian-connect-express would. Prints a JSON list of results.
const jwt = require("atlassian-jwt");

let input = "";
process.stdin.on("data", (chunk) => { input += chunk; });
process.stdin.on("end", () => {
  const out = JSON.parse(input).map(({ method, url, base_url: baseUrl, secret, claims }) => {
    const req = jwt.fromMethodAndUrl(method, url);
    const result = {
      canonical: jwt.createCanonicalRequest(req, false, baseUrl || ""),
      qsh: jwt.createQueryStringHash(req, false, baseUrl || ""),
    };
    if (secret) {
      result.token = jwt.encodeSymmetric({ ...claims, qsh: result.qsh }, secret, jwt.SymmetricAlgorithm.HS256);
    }
    return result;
  });
  process.stdout.write(JSON.stringify(out));
});
