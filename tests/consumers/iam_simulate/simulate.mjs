// Reads {policies, boundaries?, resourcePolicy?, principal, accountId, requests: [{action, resource,
// context?}]} as JSON on stdin (boundaries: the principal's permissions boundary, as [{name, policy}];
// resourcePolicy: the policy of the resource asked about, e.g. a bucket's; context: the request's
// condition keys, a list for a multi-valued key) and prints
// one IAM decision per request ("Allowed", "ImplicitlyDenied", "ExplicitlyDenied") as a JSON list.
// A request the evaluator rejects (unknown action, resource of the wrong type for the action) exits
// non-zero: a test asking about an impossible request must not pass as "denied".
import { runSimulation } from '@cloud-copilot/iam-simulate'

let input = ''
for await (const chunk of process.stdin) input += chunk
const { policies, boundaries, resourcePolicy, principal, accountId, requests } = JSON.parse(input)

const decisions = []
for (const { action, resource, context = {} } of requests) {
  const response = await runSimulation(
    {
      identityPolicies: policies,
      permissionBoundaryPolicies: boundaries,
      resourcePolicy,
      serviceControlPolicies: [],
      resourceControlPolicies: [],
      request: { principal, action, resource: { resource, accountId }, contextVariables: context },
    },
    {},
  )
  // A request on `*` (actions AWS authorizes on no particular resource) is judged for every
  // resource the action could name: one overall decision all the same.
  const judged = response.resultType === 'single' || (response.resultType === 'wildcard' && resource === '*')
  if (!judged) {
    console.error(`${action} on ${resource}: ${JSON.stringify(response.errors ?? response)}`)
    process.exit(2)
  }
  decisions.push(response.overallResult)
}
console.log(JSON.stringify(decisions))
