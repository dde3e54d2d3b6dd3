import { Dialog, showDialog } from '@jupyterlab/apputils';
import { Button, deleteIcon, refreshIcon } from '@jupyterlab/ui-components';
import React, { useState } from 'react';

import { DataLakeModel } from '../model';
import { IRule } from '../../tokens';
import { Badge, Empty, ErrorBanner, StatusLine } from './common';
import { LifetimeSelect } from './LifetimeSelect';

function when(iso: string | null, never: string): string {
  if (!iso) {
    return never;
  }
  const d = new Date(iso);
  return isNaN(d.getTime()) ? iso : d.toLocaleString();
}

function RuleRow(props: { rule: IRule; model: DataLakeModel }): JSX.Element {
  const { rule, model } = props;
  const trans = model.trans;
  const [chosen, setDays] = useState<number | null>(null);
  const days = chosen ?? model.defaultLifetime ?? 0;
  const may = model.rulePermissions;
  const { ok, replicating, stuck } = rule.locks;
  // the server's share of the rule's locks that are OK (0 to 1; null when it has none)
  const pct = Math.round((rule.progress ?? 0) * 100);
  return (
    <li
      className="itw-dl-rule"
      data-testid="itw-dl-rule"
      data-rule-id={rule.id}
      data-state={rule.state}
    >
      <div className="itw-dl-rule-head">
        <button
          className="itw-dl-link"
          title={trans.__('Open this DID')}
          onClick={() => {
            const i = rule.did.indexOf(':');
            model.setView('explore');
            void model.openDid(rule.did.slice(0, i), rule.did.slice(i + 1));
          }}
        >
          {rule.did}
        </button>
        <Badge label={rule.rse_expression ?? undefined} state={rule.state} />
      </div>
      <div
        className="itw-dl-bar"
        title={trans.__('%1 OK, %2 replicating, %3 stuck', ok, replicating, stuck)}
      >
        <div className="itw-dl-bar-fill" style={{ width: `${pct}%` }} />
      </div>
      <div className="itw-dl-rule-facts">
        {trans.__(
          '%1 OK · %2 replicating · %3 stuck · expires %4',
          ok,
          replicating,
          stuck,
          when(rule.expires_at, trans.__('never'))
        )}
      </div>
      {rule.error && <div className="itw-dl-rule-error">{rule.error}</div>}
      <div className="itw-dl-rule-actions">
        {/* hidden when the site's Rucio does not allow them (the reason is above the list) */}
        {may.extend !== false && (
          <>
            <LifetimeSelect
              model={model}
              label={trans.__('New lifetime')}
              value={days}
              onChange={setDays}
            />
            <Button
              small
              minimal
              data-testid="itw-dl-extend"
              onClick={() => void model.extendRule(rule.id, days)}
            >
              {trans.__('Extend')}
            </Button>
          </>
        )}
        {may.delete !== false && (
          <Button
            small
            minimal
            data-testid="itw-dl-delete"
            title={trans.__('Delete this rule (Rucio may then remove the replica)')}
            onClick={async () => {
              const res = await showDialog({
                title: trans.__('Delete the replication rule?'),
                body: trans.__(
                  '%1 at %2: Rucio may remove the replica once no rule keeps it.',
                  rule.did,
                  rule.rse_expression
                ),
                buttons: [
                  Dialog.cancelButton({ label: trans.__('Cancel') }),
                  Dialog.warnButton({ label: trans.__('Delete') })
                ]
              });
              if (res.button.accept) {
                await model.deleteRule(rule.id);
              }
            }}
          >
            <deleteIcon.react tag="span" elementPosition="left" />
            {trans.__('Delete')}
          </Button>
        )}
      </div>
    </li>
  );
}

/** "My replicas": the user's rules with state, locks, expiry; extend or delete. */
export function RulesView(props: { model: DataLakeModel }): JSX.Element {
  const { model } = props;
  const { rules, rulesStatus } = model;
  const trans = model.trans;
  return (
    <section className="itw-dl-rules" data-testid="itw-dl-rules">
      <header className="itw-dl-section-head">
        <span>{trans.__('My replication rules')}</span>
        <Button small minimal title={trans.__('Reload')} onClick={() => void model.loadRules()}>
          <refreshIcon.react tag="span" />
        </Button>
      </header>
      {model.actionStatus.kind === 'error' && (
        <ErrorBanner
          message={model.actionStatus.message}
          testid="itw-dl-action-error"
          onRetry={model.canRetryAction ? () => void model.retryAction() : undefined}
        />
      )}
      {model.rulePermissions.reason && (
        <div className="itw-dl-muted" data-testid="itw-dl-rule-permissions">
          {model.rulePermissions.reason}
        </div>
      )}
      {rulesStatus.kind === 'error' && rules && (
        // a failed refresh keeps the rules as last seen (their actions stay at hand) and says so
        <ErrorBanner
          message={trans.__('These are your rules as last seen. %1', rulesStatus.message)}
          testid="itw-dl-rules-error"
          onRetry={() => void model.loadRules()}
        />
      )}
      {(rulesStatus.kind === 'error' || rulesStatus.kind === 'loading') && !rules ? (
        <StatusLine
          status={rulesStatus}
          loading={trans.__('Asking Rucio for your rules…')}
          onRetry={() => void model.loadRules()}
        />
      ) : rules && rules.length === 0 ? (
        <Empty testid="itw-dl-no-rules">
          {trans.__(
            'You have no replication rules. Open a dataset in Explore and make it available here.'
          )}
        </Empty>
      ) : (
        <ul className="itw-dl-rule-list">
          {(rules ?? []).map(r => (
            <RuleRow key={r.id} rule={r} model={model} />
          ))}
        </ul>
      )}
    </section>
  );
}
